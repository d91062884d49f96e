// Models: what was trained, how well, which one the cameras run; admins promote or roll back.
import { api } from '../api.js';
import { lineChart } from '../chart.js';
import { flash, h, replace, table } from '../dom.js';
import { dateTime, num } from '../format.js';

const METRIC_NAMES = { mae: 'MAE', val_mae: 'MAE', rmse: 'RMSE', accuracy: 'accuracy', macro_f1: 'macro F1' };

/** The headline metrics of a model, whichever task it was trained for. */
export function metricText(m) {
  if (!m || typeof m !== 'object') return '–';
  if ('mae' in m) return `MAE ${num(m.mae)} · RMSE ${num(m.rmse)} · R² ${num(m.r2, 2)}${m.n ? ` · n=${m.n}` : ''}`;
  if ('accuracy' in m) return `accuracy ${num(m.accuracy)} · macro F1 ${num(m.macro_f1)}${m.n ? ` · n=${m.n}` : ''}`;
  return Object.entries(m).filter(([, v]) => typeof v === 'number').map(([k, v]) => `${k} ${num(v)}`).join(' · ') || '–';
}

/**
 * Learning-curve points from a training report, in the shapes the trainer may write:
 * `learning_curve: [{n|n_labels|labels, mae|accuracy|...}]` or `{n: [...], mae: [...]}`.
 * Returns {metric, points: [{x, y}]} or null.
 */
export function learningCurve(report) {
  if (!report || typeof report !== 'object') return null;
  const lc = report.learning_curve || report.learningCurve;
  if (!lc) return null;
  const xKeys = ['n', 'n_labels', 'labels', 'n_train', 'train_size'];
  const yKeys = ['mae', 'val_mae', 'rmse', 'accuracy', 'macro_f1'];
  if (Array.isArray(lc) && lc.length && typeof lc[0] === 'object') {
    const xk = xKeys.find((k) => k in lc[0]);
    const yk = yKeys.find((k) => k in lc[0]);
    if (!xk || !yk) return null;
    return { metric: yk, points: lc.filter((p) => p[yk] !== null).map((p) => ({ x: p[xk], y: p[yk] })) };
  }
  if (!Array.isArray(lc) && typeof lc === 'object') {
    const xk = xKeys.find((k) => Array.isArray(lc[k]));
    const yk = yKeys.find((k) => Array.isArray(lc[k]));
    if (!xk || !yk) return null;
    return { metric: yk, points: lc[xk].map((x, i) => ({ x, y: lc[yk][i] })).filter((p) => p.y !== null) };
  }
  return null;
}

export default {
  id: 'models',
  title: 'Models',
  ability: 'models',
  mount(container, ctx) {
    let models = [];
    let selected = null;
    const isAdmin = ctx.can('promote');
    const listHost = h('div', {});
    const detail = h('section', { class: 'panel', hidden: true, 'aria-label': 'Model details' });
    const status = h('p', { class: 'summary', 'aria-live': 'polite' });
    replace(container,
      h('div', { class: 'page-head' }, h('h1', {}, 'Models'), status),
      isAdmin ? h('div', { class: 'row' },
        h('button', { type: 'button', id: 'm-rollback', class: 'btn btn-warn', onclick: rollback }, 'Roll back to the previous model')) : null,
      listHost, detail);

    async function promote(m) {
      const reason = window.prompt(`Promote ${m.version} to every camera?\nReason (recorded):`, '');
      if (reason === null) return;
      try {
        await api(`/api/models/${encodeURIComponent(m.version)}/promote`, { method: 'POST', body: { reason: reason || undefined } });
        flash(`Promoted ${m.version}.`);
      } catch (err) {
        if (err.status === 409 || err.status === 422 || err.status === 400) {
          const force = window.confirm(`The server refused: ${err.message}\n\nForce it anyway? The reason is recorded.`);
          if (!force) return;
          if (!reason) { flash('Forcing a promotion needs a reason.', 'error'); return; }
          try {
            await api(`/api/models/${encodeURIComponent(m.version)}/promote`, { method: 'POST', body: { force: true, reason } });
            flash(`Promoted ${m.version} (forced).`);
          } catch (err2) {
            flash(`Promotion failed: ${err2.message}`, 'error');
            return;
          }
        } else {
          flash(`Promotion failed: ${err.message}`, 'error');
          return;
        }
      }
      load();
    }

    async function rollback() {
      if (!window.confirm('Roll every camera back to the previous model?')) return;
      try {
        await api('/api/models/rollback', { method: 'POST' });
        flash('Rolled back.');
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
      const perSite = report.per_site || report.sites;
      replace(detail,
        h('h2', {}, `Model ${m.version}`),
        h('p', {}, `${m.active ? 'Active. ' : ''}Created ${dateTime(Date.parse(m.created_at) || m.created_at)} · ${m.precision || ''} · ${metricText(m.metrics)}`),
        lc && lc.points.length
          ? [h('h3', {}, 'Learning curve'),
            lineChart({ series: [{ points: lc.points }], title: `Held-out ${lc.metric} against the number of labels`,
              xLabel: 'labelled images', yLabel: METRIC_NAMES[lc.metric] || lc.metric })]
          : h('p', { class: 'hint' }, 'This model\'s report has no learning curve.'),
        perSite && typeof perSite === 'object'
          ? [h('h3', {}, 'Per site'), table([
            { label: 'Site', value: ([k]) => k },
            { label: 'Metrics', value: ([, v]) => metricText(v) },
          ], Object.entries(perSite))] : null);
    }

    function render() {
      const active = models.find((m) => m.active);
      status.textContent = `${models.length} models · active: ${active ? active.version : 'none'}`;
      replace(listHost, table([
        { label: 'Version', value: (m) => h('button', { type: 'button', class: 'link', onclick: () => showDetail(m) }, m.version) },
        { label: 'Created', value: (m) => dateTime(Date.parse(m.created_at) || m.created_at) },
        { label: 'Precision', value: (m) => m.precision || '–' },
        { label: 'Held-out metrics', value: (m) => metricText(m.metrics) },
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
      models.sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
      render();
    }
    load();
    return null;
  },
};
