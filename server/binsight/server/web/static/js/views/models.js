// Models: what was trained, how well, which one the cameras run, how the rollout goes; admins promote or
// roll back (POST /api/models/{version}/promote, POST /api/models/rollback; GET /api/rollout).
import { api } from '../api.js';
import { lineChart } from '../chart.js';
import { flash, h, replace, table } from '../dom.js';
import { dateTime, num, plural, relative } from '../format.js';

const METRIC_NAMES = { mae: 'MAE', val_mae: 'MAE', rmse: 'RMSE', accuracy: 'accuracy', macro_f1: 'macro F1' };
const X_KEYS = ['n', 'n_labels', 'labels', 'n_train', 'train_size'];
const Y_KEYS = ['mae', 'val_mae', 'rmse', 'accuracy', 'macro_f1'];

/** The headline metrics of a model, whichever task it was trained for. */
export function metricText(m) {
  if (!m || typeof m !== 'object') return '–';
  if ('mae' in m) return `MAE ${num(m.mae)} · RMSE ${num(m.rmse)} · R² ${num(m.r2, 2)}${m.n ? ` · n=${m.n}` : ''}`;
  if ('accuracy' in m) return `accuracy ${num(m.accuracy)} · macro F1 ${num(m.macro_f1)}${m.n ? ` · n=${m.n}` : ''}`;
  return Object.entries(m).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${num(v)}`).join(' · ') || '–';
}

/**
 * Learning-curve points from a training report. The trainer writes
 * `learning_curve: [{n, test: {mae, rmse, r2, ...}}]` (held-out metrics of the head refitted on n labels);
 * flat `[{n, mae}]` and column `{n: [...], mae: [...]}` forms are read too.
 * Returns {metric, points: [{x, y}], baselines: [{name, y}]} or null.
 */
export function learningCurve(report) {
  if (!report || typeof report !== 'object') return null;
  const lc = report.learning_curve || report.learningCurve;
  if (!lc) return null;
  let out = null;
  if (Array.isArray(lc) && lc.length && typeof lc[0] === 'object') {
    // The point's own keys win: `n` is its number of labels, `test.n` only the test set's size.
    const row = (p) => (p.test && typeof p.test === 'object' ? { ...p.test, ...p } : p);
    const rows = lc.map(row);
    const xk = X_KEYS.find((k) => k in rows[0]);
    const yk = Y_KEYS.find((k) => k in rows[0]);
    if (!xk || !yk) return null;
    out = { metric: yk, points: rows.filter((p) => typeof p[yk] === 'number').map((p) => ({ x: p[xk], y: p[yk] })) };
  } else if (!Array.isArray(lc) && typeof lc === 'object') {
    const xk = X_KEYS.find((k) => Array.isArray(lc[k]));
    const yk = Y_KEYS.find((k) => Array.isArray(lc[k]));
    if (!xk || !yk) return null;
    out = { metric: yk, points: lc[xk].map((x, i) => ({ x, y: lc[yk][i] })).filter((p) => typeof p.y === 'number') };
  }
  if (!out) return null;
  // What the curve should beat: e.g. predicting the mean fill, or a head on simpler features.
  out.baselines = Object.entries(report.baselines || {})
    .filter(([, m]) => m && typeof m[out.metric] === 'number')
    .map(([name, m]) => ({ name, y: m[out.metric] }));
  return out;
}

/** Where a model's listed metrics come from, and whether they compare with the active model's. */
export function metricSource(m) {
  if (!m || !m.metrics) return (m && m.warnings && m.warnings.length) ? 'hidden: copied metadata' : '';
  const n = m.test_set && m.test_set.n ? `its own test set of ${m.test_set.n}` : 'its own test set';
  const cmp = m.comparable_with_active === false ? ', another data set than the active model\'s: not comparable' : '';
  return `claimed by the file, on ${n}${cmp}`;
}

/** Each bin's last model event that is a refusal, newest first: what the Rollout panel lists. */
export function refusals(bins) {
  return (bins || []).filter((b) => b.event && ['failed', 'retrying'].includes(b.event.state))
    .sort((a, b) => Number(b.event.ts) - Number(a.event.ts));
}

/** Rows of a candidate-vs-active comparison: overall and per site. */
export function comparisonRows(comp) {
  if (!comp || typeof comp !== 'object' || !comp.candidate || !comp.active) return [];
  const metric = comp.metric || 'mae';
  const rows = [{ scope: 'all held-out labels', candidate: comp.candidate[metric], active: comp.active[metric] }];
  const sites = new Set([...Object.keys(comp.candidate.per_site || {}), ...Object.keys(comp.active.per_site || {})]);
  for (const site of [...sites].sort()) {
    const pick = (side) => {
      const v = (comp[side].per_site || {})[site];
      return v && typeof v === 'object' ? v[metric] : v;
    };
    rows.push({ scope: site, candidate: pick('candidate'), active: pick('active') });
  }
  return rows;
}

export default {
  id: 'models',
  title: 'Models',
  ability: 'models',
  mount(container, ctx) {
    let models = [];
    let selected = null;
    let alive = true;
    const isAdmin = ctx.can('promote');
    const listHost = h('div', {});
    // Offered only when the server names a model to go back to (one healthy on every bin, not rolled
    // back from): with a single model, or right after a rollback to the oldest, there is none.
    const rollbackRow = h('div', { class: 'row', hidden: true });
    let rollbackTo = null;
    const rolloutHost = h('section', { class: 'panel rollout', 'aria-label': 'Rollout', hidden: true });
    const detail = h('section', { class: 'panel', hidden: true, 'aria-label': 'Model details' });
    const qualityHost = h('section', { class: 'panel', hidden: true, 'aria-label': 'Label quality' });
    const status = h('p', { class: 'summary', 'aria-live': 'polite' });
    replace(container,
      h('div', { class: 'page-head' }, h('h1', {}, 'Models'), status),
      rollbackRow, rolloutHost, listHost, detail, qualityHost);

    async function promote(m) {
      const reason = window.prompt(`Promote ${m.version}? Canary cameras get it first, then every camera.\nReason (recorded):`, '');
      if (reason === null) return;
      const url = `/api/models/${encodeURIComponent(m.version)}/promote`;
      try {
        await api(url, { method: 'POST', body: { reason: reason || undefined } });
        flash(`Promoting ${m.version}.`);
      } catch (err) {
        if (![400, 409, 422].includes(err.status)) {
          flash(`Promotion failed: ${err.message}`, 'error');
          return;
        }
        // The gate refused (e.g. worse on held-out labels): say why; forcing needs a reason, recorded.
        const force = window.confirm(`The server refused: ${err.message}\n\nForce it anyway? The reason is recorded.`);
        if (!force) {
          flash(`Not promoted: ${err.message}`, 'error');
          return;
        }
        if (!reason) {
          flash('Forcing a promotion needs a reason.', 'error');
          return;
        }
        try {
          await api(url, { method: 'POST', body: { force: true, reason } });
          flash(`Promoting ${m.version} (forced).`);
        } catch (err2) {
          flash(`Promotion failed: ${err2.message}`, 'error');
          return;
        }
      }
      load();
    }

    async function rollback() {
      const reason = window.prompt(`Roll every camera back to ${rollbackTo || 'the previous model'}?\nReason (recorded):`, '');
      if (reason === null) return;
      try {
        await api('/api/models/rollback', { method: 'POST', body: { reason: reason || undefined } });
        flash('Rolling back.');
      } catch (err) {
        flash(`Rollback failed: ${err.message}`, 'error');
      }
      load();
    }

    function showDetail(m) {
      selected = m.version;
      const lc = learningCurve(m.report);
      detail.hidden = false;
      const report = m.report && typeof m.report === 'object' ? m.report : {};
      const comp = comparisonRows(report.comparison);
      const metric = (report.comparison && report.comparison.metric) || 'mae';
      const yName = lc ? METRIC_NAMES[lc.metric] || lc.metric : '';
      let curve = h('p', { class: 'hint' }, 'This model\'s report has no learning curve.');
      if (lc && lc.points.length) {
        const xs = lc.points.map((p) => p.x);
        const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
        curve = [h('h3', {}, 'Learning curve'),
          lineChart({ series: [{ points: lc.points },
            ...lc.baselines.map((b) => ({ points: [{ x: x0, y: b.y }, { x: x1, y: b.y }], dashed: true }))],
          title: `Held-out ${yName} against the number of labelled images`, xLabel: 'labelled images', yLabel: yName }),
          h('ul', { class: 'legend' }, h('li', {}, h('span', { class: 'swatch sw-curve', 'aria-hidden': 'true' }), 'this model\'s head on n labels'),
            lc.baselines.map((b) => h('li', {}, h('span', { class: 'swatch sw-baseline', 'aria-hidden': 'true' }), `baseline: ${b.name} (${num(b.y)})`)))];
      }
      replace(detail,
        h('h2', {}, `Model ${m.version}`),
        h('p', {}, `${m.active ? 'Active. ' : ''}Created ${dateTime(m.created_at)} · ${m.precision || ''} · ${metricText(m.metrics)} (${metricSource(m)})`),
        (m.warnings || []).map((w) => h('p', { class: 'error' }, w)),
        m.server_check && m.server_check.checked ? h('p', { id: 'm-server-check' },
          `Measured by the server at promotion, on the same ${m.server_check.n} stored held-out labels: MAE ${num(m.server_check.candidate_mae)} against ${num(m.server_check.active_mae)} for the model then active.`) : null,
        curve,
        comp.length ? [h('h3', {}, `Against the model that was active (${METRIC_NAMES[metric] || metric}, ${report.comparison.n || '?'} held-out labels)`),
          table([
            { label: 'Where', value: (r) => r.scope },
            { label: 'This model', value: (r) => num(r.candidate), className: 'num' },
            { label: `Active then (${report.comparison.active.version || '?'})`, value: (r) => num(r.active), className: 'num' },
          ], comp)] : null);
    }

    function renderRollbackButton(st) {
      rollbackTo = st && st.rollback_to ? st.rollback_to : null;
      rollbackRow.hidden = !(isAdmin && rollbackTo);
      replace(rollbackRow, isAdmin && rollbackTo
        ? h('button', { type: 'button', id: 'm-rollback', class: 'btn btn-warn', onclick: rollback }, `Roll back to ${rollbackTo}`)
        : null);
    }

    function renderRollout(st) {
      renderRollbackButton(st);
      if (!st) { rolloutHost.hidden = true; return; }
      rolloutHost.hidden = false;
      const r = st.rollout;
      const bins = st.bins || [];
      const onActive = bins.filter((b) => st.active && b.running === st.active).length;
      replace(rolloutHost,
        h('h2', {}, 'Rollout'),
        h('p', { id: 'm-rollout' }, `Active: ${st.active || 'none'} · ${onActive} of ${bins.length} cameras run it`),
        r ? h('p', {}, h('strong', {}, `${r.kind} ${r.version}: ${r.state}`),
          r.canary_bins && r.canary_bins.length ? ` · canaries ${r.canary_bins.join(', ')}` : '',
          r.forced ? ' · forced' : '', r.reason ? ` · reason: ${r.reason}` : '',
          r.halt_reason ? h('span', { class: 'error' }, ` · halted: ${r.halt_reason}`) : '',
          r.comparison && r.comparison.gate ? ` · gate: ${r.comparison.gate}` : '',
          ` · ${relative(r.updated_at)} by ${r.created_by || '?'}`) : h('p', { class: 'hint' }, 'No rollout yet.'),
        refusals(bins).length ? [h('h3', {}, 'Cameras that refused a release'),
          h('ul', { id: 'm-refusals', class: 'wrap' }, refusals(bins).map((b) => h('li', { 'data-bin': b.bin_id },
            h('strong', {}, b.bin_id), ` ${b.event.state === 'retrying' ? 'refused, retrying' : 'refused'} ${b.event.ref || ''}: `,
            b.event.detail || '(no reason given)', ` · ${relative(b.event.ts)}`)))] : null,
        (st.history || []).length > 1 ? h('details', {}, h('summary', {}, 'Earlier rollouts'), table([
          { label: 'When', value: (x) => dateTime(x.started_at) },
          { label: 'What', value: (x) => `${x.kind} ${x.version}` },
          { label: 'State', value: (x) => x.state },
          { label: 'Why', value: (x) => x.halt_reason || x.reason || '–', className: 'wrap' },
        ], st.history.slice(1))) : null);
    }

    // How far the labels the gate judges with can be trusted (GET /api/labels/quality).
    function renderQuality(q) {
      if (!q) { qualityHost.hidden = true; return; }
      qualityHost.hidden = false;
      const d = q.double_labelled || {};
      const g = q.gold || {};
      const signed = (v) => (v === null || v === undefined ? '–' : `${v > 0 ? '+' : ''}${num(v)}`);
      replace(qualityHost,
        h('h2', {}, 'Label quality'),
        h('p', { id: 'm-agreement' }, d.images
          ? `${plural(d.images, 'image')} labelled by two or more people: mean difference ${num(d.mean_abs_diff)}, ${Math.round((d.within_0_1 || 0) * 100)}% within 0.1.`
          : 'No image is labelled by two people yet (every tenth image in the labelling queue is a second opinion when another person labelled it).'),
        h('p', {}, g.images
          ? `${plural(g.images, 'gold image')} (taken at a detected collection: about empty); mean label ${num(g.mean_label)}.`
          : 'No gold images yet (images taken right after a detected collection).'),
        (q.labellers || []).length ? table([
          { label: 'Labeller', value: (x) => x.who },
          { label: 'Labels', value: (x) => String(x.labels), className: 'num' },
          { label: 'Bias against the others', value: (x) => `${signed(x.bias_vs_others)} (${x.double_labelled} shared)`, className: 'num' },
          { label: 'Bias on gold images', value: (x) => `${signed(x.bias_vs_gold)} (${x.gold})`, className: 'num' },
        ], q.labellers, { caption: 'Per labeller: mean difference from the others on the same images, and from 0 on gold images', rowAttrs: (x) => ({ 'data-labeller': x.who }) }) : null);
    }

    function render() {
      const active = models.find((m) => m.active);
      status.textContent = `${plural(models.length, 'model')} · active: ${active ? active.version : 'none'}`;
      replace(listHost, table([
        { label: 'Version', value: (m) => h('button', { type: 'button', class: 'link', onclick: () => showDetail(m) }, m.version) },
        { label: 'Created', value: (m) => dateTime(m.created_at) },
        { label: 'Precision', value: (m) => m.precision || '–' },
        { label: 'Held-out metrics', value: (m) => [metricText(m.metrics), h('br', {}), h('small', { class: 'hint' }, metricSource(m))] },
        { label: 'State', value: (m) => (m.active ? h('span', { class: 'state state-online' }, 'active') : '') },
        ...(isAdmin ? [{ label: 'Action', value: (m) => (m.active ? '' : h('button', { type: 'button', class: 'btn', onclick: () => promote(m) }, 'Promote')) }] : []),
      ], models, { caption: 'Trained models, newest first', rowAttrs: (m) => ({ 'data-model': m.version }), empty: 'No models yet.' }));
      const m = models.find((x) => x.version === selected) || active;
      if (m) showDetail(m);
    }

    async function load() {
      try {
        models = await api('/api/models');
      } catch (err) {
        status.textContent = `Could not load models: ${err.message}`;
        return;
      }
      if (!alive) return;
      models.sort((a, b) => Number(b.created_at) - Number(a.created_at));
      render();
      try {
        renderRollout(await api('/api/rollout'));
      } catch {
        renderRollout(null); // a server without rollouts: the list still shows
      }
      try {
        renderQuality(await api('/api/labels/quality'));
      } catch {
        renderQuality(null);
      }
    }
    load();
    const timer = setInterval(load, 30_000);
    return () => { alive = false; clearInterval(timer); };
  },
};
