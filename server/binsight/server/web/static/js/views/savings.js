// Savings: the manager's report from the server's own history (GET /api/reports/savings): lifts seen,
// how full bins were when lifted, overflows seen, km planned, and what a fixed schedule would have needed.
import { api } from '../api.js';
import { download, flash, h, replace, table } from '../dom.js';

const pct = (x) => (x === null || x === undefined ? '–' : `${Math.round(x * 100)}%`);
const int = (x) => (x === null || x === undefined ? '–' : Number(x).toLocaleString());
const isoDay = (d) => d.toISOString().slice(0, 10);

function defaults() {
  const to = new Date();
  const from = new Date(to.getTime() - 13 * 86_400_000);
  return { from: isoDay(from), to: isoDay(to) };
}

function figures(r) {
  const rows = [
    { what: 'Lifts (collections seen in the readings)', measured: int(r.lifts), fixed: int(r.fixed_lifts) },
    { what: 'How full bins were when lifted, on average', measured: pct(r.mean_fill_at_lift), fixed: pct(r.fixed_mean_fill_at_lift) },
    { what: 'Lifts of bins under half full', measured: int(r.lifts_under_50), fixed: '–' },
    { what: 'Times a bin was seen full to the brim', measured: int(r.overflow_events), fixed: '–' },
    { what: 'Bin-hours full to the brim', measured: int(r.overflow_hours), fixed: '–' },
    // Like for like: the fixed schedule's km on the same service days as the plans.
    { what: 'Truck km on the days with a plan', measured: int(r.km_planned), fixed: int(r.fixed_km_on_planned_days) },
  ];
  return table([
    { label: 'Figure', value: (x) => x.what },
    { label: 'Measured', className: 'num', value: (x) => x.measured },
    { label: 'Fixed schedule (replayed)', short: 'Fixed', className: 'num', value: (x) => x.fixed },
  ], rows, { caption: `${r.start} to ${r.end}, ${r.bins} bins with readings` });
}

function kmTable(r) {
  const fixed = r.fixed_km_by_day || {};
  const days = [...new Set([...Object.keys(r.km_by_day || {}), ...Object.keys(fixed)])].sort();
  const km = (x) => (x === undefined ? '–' : x.toLocaleString(undefined, { maximumFractionDigits: 1 }));
  return table([
    { label: 'Service day', value: (d) => d },
    { label: 'Km planned', className: 'num', value: (d) => km((r.km_by_day || {})[d]) },
    { label: 'Fixed schedule km (replayed)', short: 'Fixed km', className: 'num', value: (d) => km(fixed[d]) },
  ], days, { caption: 'Km per service day: the last finished plan of each day, and the fixed schedule routed on the same trucks', empty: 'No finished plans in this period.' });
}

export default {
  id: 'savings',
  title: 'Savings',
  ability: 'reports',
  mount(container) {
    let alive = true;
    const d = defaults();
    const from = h('input', { id: 's-from', type: 'date', value: d.from, required: true });
    const to = h('input', { id: 's-to', type: 'date', value: d.to, required: true });
    const out = h('div', { 'aria-live': 'polite' });
    const query = () => `?from=${encodeURIComponent(from.value)}&to=${encodeURIComponent(to.value)}`;
    async function load() {
      replace(out, h('p', { class: 'hint' }, 'Loading…'));
      let r;
      try {
        r = await api(`/api/reports/savings${query()}`);
      } catch (err) {
        if (alive) replace(out, h('p', { class: 'error' }, err.message));
        return;
      }
      if (!alive) return;
      replace(out,
        h('section', { class: 'panel', 'aria-label': 'In short' }, h('h2', {}, 'In short'),
          h('ul', { class: 'summary-list' }, r.summary.map((line) => h('li', {}, line)))),
        h('section', { class: 'panel', 'aria-label': 'Figures' }, figures(r),
          h('p', { class: 'hint' }, 'Readings are the cameras\' estimates (about ±5 points of fill). The fixed schedule lifts each bin '
            + 'every few days, chosen from its measured filling so it is about 80% full on average: the same rule as the twin\'s "fixed" policy.')),
        h('section', { class: 'panel', 'aria-label': 'Km per day' }, kmTable(r)));
    }
    async function csv() {
      try {
        const blob = await api(`/api/reports/savings${query()}&format=csv`, { blob: true });
        download(new Blob([blob], { type: 'text/csv' }), `binsight-savings-${from.value}-${to.value}.csv`);
      } catch (err) {
        flash(err.message, 'error');
      }
    }
    const form = h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); load(); } },
      h('div', { class: 'field' }, h('label', { for: 's-from' }, 'From'), from),
      h('div', { class: 'field' }, h('label', { for: 's-to' }, 'To (included)'), to),
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Show'),
      h('button', { type: 'button', class: 'btn', onclick: csv }, 'Download CSV'));
    replace(container, h('h1', {}, 'Savings'), form, out);
    load();
    return () => { alive = false; };
  },
};
