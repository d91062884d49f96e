// Cameras: which cameras are online (and why not), their health, and one bin's fill history with its forecast.
import { api, query } from '../api.js';
import { fillChart, fillLegend } from '../chart.js';
import { flash, h, keepFocus, replace, table } from '../dom.js';
import { dateTime, duration, plural, relative, shortDateTime } from '../format.js';
import { offlineReason, timeToFull } from './bininfo.js';

/** What the drivers found at the bin (their stop reports), beside what the camera saw; newest first. */
function driverReports(reports) {
  if (!reports.length) return null;
  return h('section', { class: 'driver-reports', 'aria-label': "Drivers' reports" },
    h('h3', {}, "Drivers' reports"),
    h('ul', {}, [...reports].reverse().map((r) => h('li', {},
      h('span', { class: `plan-report plan-report-${r.status}` }, r.status),
      ` ${shortDateTime(r.ts)} · ${r.by} (${r.truck})${r.note ? `: ${r.note}` : ''}`))));
}

const COMMANDS = [
  ['capture', 'Capture now'],
  ['send_image', 'Send an image'],
  ['send_stats', 'Send stats'],
];

export default {
  id: 'cameras',
  title: 'Cameras',
  ability: 'cameras',
  mount(container, ctx) {
    let devices = [];
    let bins = new Map();
    let selected = ctx.params[0] || null;
    let alive = true;
    const offlineOnly = h('input', { id: 'd-offline', type: 'checkbox' });
    const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
    const ingestHost = h('p', { id: 'ingest', class: 'summary' });
    const listHost = h('div', {});
    const days = h('select', { id: 'h-days' }, [3, 7, 14, 30, 90].map((d) => h('option', { value: d, selected: d === 14 }, `${d} days`)));
    const chartHost = h('section', { class: 'panel chart-panel', 'aria-label': 'Fill history', hidden: true });

    replace(container,
      h('div', { class: 'page-head' }, h('h1', {}, 'Cameras'), summary),
      ingestHost,
      h('div', { class: 'filters' }, h('div', { class: 'field check' }, offlineOnly, h('label', { for: 'd-offline' }, 'Offline only'))),
      listHost,
      chartHost);

    async function command(binId, action, extra = {}) {
      try {
        const res = await api(`/api/devices/${encodeURIComponent(binId)}/commands`, { method: 'POST', body: { action, ...extra } });
        flash(`Sent "${action}" to ${binId} (command ${res && res.id ? res.id : 'queued'}).`);
      } catch (err) {
        flash(`Command failed: ${err.message}`, 'error');
      }
    }

    function intervalForm(binId, dev) {
      const input = h('input', { id: 'c-interval', type: 'number', min: 10, step: 10, value: dev.interval_s || 600, inputmode: 'numeric' });
      return h('form', { class: 'row inline', onsubmit: (e) => {
        e.preventDefault();
        const s = Number(input.value);
        if (!(s > 0)) { flash('Capture interval: give a number of seconds above 0.', 'error'); return; }
        command(binId, 'set_interval', { interval_s: s });
      } },
      h('label', { for: 'c-interval' }, 'Capture every (s)'), input,
      h('button', { type: 'submit', class: 'btn' }, 'Set interval'));
    }

    async function loadEvents(binId, host) {
      let events;
      try {
        events = await api(`/api/devices/${encodeURIComponent(binId)}/events${query({ limit: 20 })}`);
      } catch (err) {
        replace(host, h('p', { class: 'hint' }, `No device events: ${err.message}`));
        return;
      }
      if (!alive || selected !== binId) return;
      replace(host, h('h3', {}, 'Recent device events'), table([
        { label: 'When', value: (e) => h('span', { title: dateTime(e.ts) }, relative(e.ts)) },
        { label: 'Kind', value: (e) => e.kind },
        { label: 'State', value: (e) => e.state },
        { label: 'Ref', value: (e) => (e.ref ? h('code', {}, e.ref) : '–') },
        { label: 'Detail', value: (e) => e.detail || '–', className: 'wrap' },
      ], (events || []).slice(0, 20), { empty: 'No events reported.' }));
    }

    async function showHistory(binId) {
      const eventsHost = h('div', { class: 'events' });
      selected = binId;
      history.replaceState(null, '', `#/cameras/${encodeURIComponent(binId)}`);
      chartHost.hidden = false;
      replace(chartHost, h('h2', {}, `Fill history of ${binId}`), h('p', { class: 'hint' }, 'Loading…'));
      let hist;
      try {
        hist = await api(`/api/bins/${encodeURIComponent(binId)}/history${query({ days: days.value })}`);
      } catch (err) {
        replace(chartHost, h('h2', {}, `Fill history of ${binId}`), h('p', { class: 'error' }, err.message));
        return;
      }
      if (!alive || selected !== binId) return;
      const bin = bins.get(binId);
      const dev = devices.find((d) => d.bin_id === binId);
      const usable = hist.readings.filter((r) => r.fill !== null).length;
      replace(chartHost,
        h('div', { class: 'row' }, h('h2', {}, `Fill history of ${binId}`),
          h('div', { class: 'field' }, h('label', { for: 'h-days' }, 'Period'), days)),
        h('p', {}, `${plural(hist.readings.length, 'reading')} (${hist.readings.length - usable} unusable) · `
          + `${plural(hist.collections.length, 'collection')} detected · ${timeToFull(hist.forecast || (bin && bin.forecast))}`),
        fillChart({ ...hist, title: `Fill of ${binId} over the last ${days.value} days` }),
        fillLegend(hist.threshold),
        driverReports(hist.stop_reports || []),
        ctx.can('commands') && dev ? h('div', { class: 'row commands' }, h('span', {}, 'Commands:'),
          COMMANDS.map(([action, text]) => h('button', { type: 'button', class: 'btn', onclick: () => command(binId, action) }, text)),
          intervalForm(binId, dev)) : null,
        eventsHost);
      loadEvents(binId, eventsHost);
    }
    days.addEventListener('change', () => selected && showHistory(selected));

    function render() {
      const shown = offlineOnly.checked ? devices.filter((d) => !d.online) : devices;
      const off = devices.filter((d) => !d.online).length;
      summary.textContent = `${plural(devices.length, 'device')} · ${devices.length - off} online · ${off} offline`;
      const sorted = shown.slice().sort((a, b) => Number(a.online) - Number(b.online) || a.bin_id.localeCompare(b.bin_id));
      keepFocus(listHost, 'data-device', () => replace(listHost, table([
        { label: 'Bin', value: (d) => h('button', { type: 'button', class: 'link', onclick: () => showHistory(d.bin_id), 'aria-label': `Fill history of ${d.bin_id}` }, d.bin_id) },
        { label: 'State', value: (d) => [h('span', { class: `state ${d.online ? 'state-online' : 'state-offline'}` }, d.online ? 'online' : 'offline'),
          !d.online && d.reason ? ` · ${offlineReason(d.reason)}` : '', d.camera_ok === false ? h('span', { class: 'state-offline' }, ' · camera fault') : ''] },
        { label: 'Readings', value: (d) => (d.readings ?? '–'), className: 'num' },
        { label: 'Last seen', value: (d) => h('span', { title: dateTime(d.last_seen) }, relative(d.last_seen)) },
        { label: 'Model', value: (d) => h('code', {}, d.model || '–') },
        { label: 'Outbox', value: (d) => (d.outbox_depth ?? '–'), className: 'num' },
        { label: 'Dropped', value: (d) => (d.dropped ?? '–'), className: 'num' },
        { label: 'Seq gaps', value: (d) => (d.seq_gaps ?? '–'), className: 'num' },
        { label: 'Uptime', value: (d) => (d.uptime_s ? duration(d.uptime_s * 1000) : '–') },
        { label: 'Inference', value: (d) => (d.last_infer_ms ? `${Math.round(d.last_infer_ms)} ms` : '–'), className: 'num' },
        { label: 'Last error', value: (d) => d.last_error || '–', className: 'wrap' },
      ], sorted, { caption: 'Devices, offline first', rowAttrs: (d) => ({ 'data-device': d.bin_id, class: d.online ? '' : 'row-offline' }), empty: 'No devices have reported yet.' })));
    }
    offlineOnly.addEventListener('change', render);

    async function loadIngest() {
      // Loss is reported, never hidden: missing readings (gaps in each camera's seq) and rejected messages.
      try {
        const ing = await api('/api/ingest');
        const rejects = Object.entries(ing.rejects || {}).filter(([, n]) => n > 0);
        replace(ingestHost, `Ingest: ${ing.readings.toLocaleString()} readings stored · `,
          h('span', { class: ing.seq_gaps ? 'state-offline' : '' }, `${ing.seq_gaps.toLocaleString()} missing (seq gaps)`),
          ' · ', rejects.length
            ? h('span', { class: 'state-offline' }, `rejected: ${rejects.map(([r, n]) => `${r} ${n}`).join(', ')}`)
            : 'no messages rejected');
      } catch (err) {
        replace(ingestHost, `Ingest figures unavailable: ${err.message}`);
      }
    }

    async function load() {
      loadIngest();
      try {
        const [devs, bs] = await Promise.all([api('/api/devices'), api('/api/bins')]);
        devices = devs;
        bins = new Map(bs.map((b) => [b.id, b]));
      } catch (err) {
        summary.textContent = `Could not load devices: ${err.message}`;
        return;
      }
      if (!alive) return;
      render();
    }
    load().then(() => { if (selected) showHistory(selected); });
    const timer = setInterval(load, 30_000);
    return () => { alive = false; clearInterval(timer); };
  },
};
