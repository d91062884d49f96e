// A driver's manifest: the stops of one truck in the day's PUBLISHED plan (never whatever was planned
// last), first stop at the top, with a navigate link and done / blocked / overflowing per stop.
// A driver's token names its truck, so signing in lands here; operators pick any truck.
import { ApiError, api } from '../api.js';
import { flash, h, replace } from '../dom.js';
import { clock, dateTime, litres, pct } from '../format.js';

const KIND_LABEL = { depot: 'Depot', disposal: 'Disposal (tip)', break: 'Break' };
const REPORTS = [
  { status: 'done', label: 'Done' },
  { status: 'blocked', label: 'Blocked' },
  { status: 'overflowing', label: 'Overflowing' },
];
// The dispatcher may publish a new plan during the shift: look again this often (and when the phone
// wakes up), and say so when the plan changed.
const REFRESH_MS = 60_000;
const REPORT_TEXT = { done: 'Done', blocked: 'Blocked', overflowing: 'Overflowing' };
// Reports made without a connection wait on the phone (localStorage, which survives a reload) and go
// out, oldest first, when the connection is back: a driver in a dead zone loses nothing.
const PENDING_KEY = 'binsight.pendingReports';

function pendingReports() {
  try {
    const list = JSON.parse(localStorage.getItem(PENDING_KEY) || '[]');
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

function setPendingReports(list) {
  if (list.length) localStorage.setItem(PENDING_KEY, JSON.stringify(list));
  else localStorage.removeItem(PENDING_KEY);
}

function pendingLine(p) {
  return h('p', { class: `stop-report stop-report-${p.status} stop-report-pending` },
    `${REPORT_TEXT[p.status] || p.status}: saved on this phone at ${new Date(p.at).toTimeString().slice(0, 5)}, sent when the connection is back${p.note ? `: ${p.note}` : ''}`);
}

/** "Thursday 4 December 2026" for "2026-12-04" (the plan's own day, not "next day"). */
export function longDay(iso) {
  if (!iso) return 'an unknown day';
  const [y, m, d] = iso.split('-').map(Number);
  return new Date(y, m - 1, d).toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
}

function reportLine(report) {
  if (!report) return null;
  return h('p', { class: `stop-report stop-report-${report.status}` },
    `${REPORT_TEXT[report.status] || report.status} at ${dateTime(report.ts)} by ${report.by}${report.note ? `: ${report.note}` : ''}`);
}

export default {
  id: 'manifest',
  title: 'Manifests',
  ability: 'manifest',
  mount(container, ctx) {
    let alive = true;
    // A driver sees its own truck whatever the address says; the server refuses other trucks anyway.
    let truck = ctx.me.truck || ctx.params[0] || '';
    const head = h('div', { class: 'manifest-head' });
    const body = h('div', { class: 'manifest-body' });
    const status = h('p', { id: 'manifest-status', class: 'status', role: 'status', 'aria-live': 'polite' });
    replace(container, h('div', { class: 'page-head' }, h('h1', { id: 'manifest-title' }, 'Manifest')), status, head, body);

    async function report(day, stop, choice, li) {
      const note = choice === 'done' ? undefined : (window.prompt(`${REPORT_TEXT[choice]}: a note for the dispatcher (optional)`) || undefined);
      li.querySelectorAll('button').forEach((b) => { b.disabled = true; });
      try {
        const saved = await api(`/api/manifests/${encodeURIComponent(truck)}/stops/${encodeURIComponent(stop.id)}?date=${encodeURIComponent(day)}`,
          { method: 'POST', body: { status: choice, note } });
        li.dataset.report = saved.status;
        li.querySelector('.stop-report')?.remove();
        li.append(reportLine(saved));
        flash(`Stop ${stop.number}: ${REPORT_TEXT[saved.status]}.`);
      } catch (err) {
        if (!(err instanceof ApiError) || err.status !== 0) {
          flash(`Not saved: ${err.message}`, 'error');
          return;
        }
        const waiting = { truck, bin: stop.id, day, status: choice, note, at: Date.now() };
        setPendingReports([...pendingReports().filter((p) => !(p.truck === truck && p.bin === stop.id && p.day === day)), waiting]);
        li.dataset.report = choice;
        li.querySelector('.stop-report')?.remove();
        li.append(pendingLine(waiting));
        flash(`Stop ${stop.number}: ${REPORT_TEXT[choice]}, saved on this phone (no connection); it is sent when the connection is back.`);
      } finally {
        li.querySelectorAll('button').forEach((b) => { b.disabled = false; });
      }
    }

    function stopItem(day, stop, first) {
      const isBin = stop.kind === 'bin';
      // The route starts by leaving the depot: its time is a departure, not an arrival.
      const timeLabel = first && stop.kind === 'depot' ? 'Leave ' : 'ETA ';
      const waiting = isBin ? pendingReports().find((p) => p.truck === truck && p.bin === stop.id && p.day === day) : null;
      const title = isBin ? (stop.name || stop.id) : [KIND_LABEL[stop.kind] || stop.kind, stop.kind === 'break' || String(stop.id).toLowerCase() === stop.kind ? '' : ` ${stop.id}`];
      const li = h('li', { class: `stop stop-${stop.kind}`, 'data-stop': stop.id, 'data-report': stop.report ? stop.report.status : false },
        h('div', { class: 'stop-head' },
          h('span', { class: 'stop-no', 'aria-hidden': isBin ? false : 'true' }, isBin ? String(stop.number) : ''),
          h('span', { class: 'stop-name' }, title),
          h('span', { class: 'stop-eta' }, h('span', { class: 'stop-eta-label' }, timeLabel), clock(first ? stop.depart || stop.arrive : stop.arrive))),
        isBin && stop.address ? h('p', { class: 'stop-address' }, stop.address) : null,
        isBin ? h('p', { class: 'stop-sub' },
          [stop.name ? stop.id : null, stop.site, `expected fill ${pct(stop.fill)}`, litres(stop.volume_l)].filter(Boolean).join(' · ')) : null,
        h('div', { class: 'stop-actions' },
          stop.navigate ? h('a', { class: 'btn stop-nav', href: stop.navigate, 'aria-label': `Navigate to ${isBin ? [stop.name || stop.id, stop.address].filter(Boolean).join(', ') : stop.id}` }, 'Navigate') : null,
          isBin ? REPORTS.map((r) => h('button', {
            type: 'button', class: `btn stop-btn stop-btn-${r.status}`, 'data-status': r.status,
            'aria-label': `${r.label}: stop ${stop.number}`,
            onclick: (e) => report(day, stop, r.status, e.target.closest('li')),
          }, r.label)) : null),
        isBin ? (waiting ? pendingLine(waiting) : reportLine(stop.report)) : null);
      if (waiting) li.dataset.report = waiting.status;
      return li;
    }

    function truckPicker(trucks) {
      if (ctx.me.role === 'driver' || !trucks.length) return null;
      const sel = h('select', { id: 'm-truck' }, h('option', { value: '' }, 'Choose a truck'),
        trucks.map((t) => h('option', { value: t, selected: t === truck }, t)));
      sel.addEventListener('change', () => {
        truck = sel.value;
        history.replaceState(null, '', `#/manifest/${encodeURIComponent(truck)}`);
        load();
      });
      return h('div', { class: 'field no-print' }, h('label', { for: 'm-truck' }, 'Truck'), sel);
    }

    function render(m) {
      const title = container.querySelector('#manifest-title');
      title.textContent = `${m.truck || 'Manifest'} · ${longDay(m.service_day)}`;
      replace(head,
        h('p', { class: 'manifest-published' }, `Published plan, ${dateTime(m.published_at)} by ${m.published_by || 'the dispatcher'}. `,
          h('button', { type: 'button', class: 'btn btn-quiet', id: 'm-refresh', onclick: () => load() }, 'Refresh')),
        truckPicker(m.trucks || []));
      if (!m.route) {
        replace(body, h('p', { id: 'manifest-none', class: 'notice' }, m.message || `${m.truck} has no route today.`));
        return;
      }
      let n = 0;
      const stops = m.route.stops.map((x) => ({ ...x, number: x.kind === 'bin' ? (n += 1) : null }));
      replace(body,
        h('p', { class: 'manifest-meta' }, `${n} bins · ${(m.route.distance_km ?? 0).toFixed(1)} km · ${litres(m.route.collected_l)} to collect`),
        h('ol', { class: 'stops', 'aria-label': `Stops for ${m.truck}` }, stops.map((x, i) => stopItem(m.service_day, x, i === 0))));
    }

    // Send what waited on the phone; a refusal (the plan changed, 409) is said, not retried forever.
    let flushing = false;
    async function sendPending() {
      if (flushing) return 0;
      flushing = true;
      let sent = 0;
      try {
        for (const p of pendingReports()) {
          if (p.truck !== truck) continue;
          try {
            await api(`/api/manifests/${encodeURIComponent(p.truck)}/stops/${encodeURIComponent(p.bin)}?date=${encodeURIComponent(p.day)}`,
              { method: 'POST', body: { status: p.status, note: p.note, made_at: p.at } });
            sent += 1;
          } catch (err) {
            if (err instanceof ApiError && err.status === 0) break; // still offline: keep the rest
            flash(`A report saved on this phone was refused (${p.bin}: ${err.message}).`, 'error');
          }
          setPendingReports(pendingReports().filter((q) => !(q.truck === p.truck && q.bin === p.bin && q.day === p.day && q.at === p.at)));
        }
      } finally {
        flushing = false;
      }
      if (sent) flash(`${sent === 1 ? 'A report' : `${sent} reports`} saved on this phone ${sent === 1 ? 'was' : 'were'} sent.`);
      return sent;
    }

    let shownPlan = null;
    async function load() {
      await sendPending();
      if (!alive) return;
      if (shownPlan === null) status.textContent = 'Loading…';
      try {
        const m = truck
          ? await api(`/api/manifests/${encodeURIComponent(truck)}`)
          : { ...(await api('/api/manifests')), truck: '', route: null, message: 'Choose a truck to see its stops.' };
        if (!alive) return;
        status.textContent = shownPlan && shownPlan !== m.plan_id
          ? `The dispatcher published a new plan (${dateTime(m.published_at)}): these are your stops now.` : '';
        shownPlan = m.plan_id;
        render(m);
      } catch (err) {
        if (!alive) return;
        status.textContent = '';
        replace(head);
        replace(body, h('p', { id: 'manifest-none', class: 'notice' },
          err instanceof ApiError && err.status === 404 ? err.message : `Could not load the manifest: ${err.message}`));
      }
    }
    load();
    const timer = setInterval(load, REFRESH_MS);
    const onWake = () => { if (document.visibilityState === 'visible') load(); };
    document.addEventListener('visibilitychange', onWake);
    window.addEventListener('online', load);
    return () => {
      alive = false;
      clearInterval(timer);
      document.removeEventListener('visibilitychange', onWake);
      window.removeEventListener('online', load);
    };
  },
};
