// Map: every bin coloured by its latest fill; filters; details on hover or click; a sortable list.
import { api } from '../api.js';
import { fillColor, shownFill } from '../colors.js';
import { h, keepFocus, replace, table } from '../dom.js';
import { pct, plural, relative } from '../format.js';
import { MapView } from '../mapview.js';
import { binDetails, classFlag, deviceState, fillBadge, timeToFull } from './bininfo.js';

export const OSM_TEMPLATE = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';
const TILE_KEY = 'binsight.tiles';
const LIST_MAX = 300;
const URGENT_SHOWN = 8;
// Phones get the details of a tapped bin in a sheet over the page's bottom, where the thumb is.
const PHONE = '(max-width: 600px)';

/** Midnight after `now`, local time, plus `days` days (epoch ms). */
function endOfDay(now, days = 0) {
  const d = new Date(now);
  d.setHours(24 * (days + 1), 0, 0, 0);
  return d.getTime();
}

/**
 * Bins by when their forecast reaches the full threshold: {today, tomorrow, later} (soonest first)
 * and how many have no forecast. A bin already full counts for today.
 */
export function urgency(bins, now = Date.now()) {
  const out = { today: [], tomorrow: [], later: [], unforecast: 0 };
  const today = endOfDay(now);
  const tomorrow = endOfDay(now, 1);
  for (const b of bins) {
    const ts = b.forecast && b.forecast.full_ts;
    if (!ts) { out.unforecast += 1; continue; }
    out[ts < today ? 'today' : ts < tomorrow ? 'tomorrow' : 'later'].push(b);
  }
  for (const k of ['today', 'tomorrow', 'later']) out[k].sort((a, b) => a.forecast.full_ts - b.forecast.full_ts);
  return out;
}

/** Tile settings live in this browser: {on, url}. Off by default: the page must work offline. */
export function tileSettings() {
  try {
    return { on: false, url: OSM_TEMPLATE, ...JSON.parse(localStorage.getItem(TILE_KEY) || '{}') };
  } catch {
    return { on: false, url: OSM_TEMPLATE };
  }
}

export function tileControls(onChange) {
  const st = tileSettings();
  const url = h('input', { id: 'tile-url', type: 'url', value: st.url, spellcheck: 'false' });
  const on = h('input', { id: 'tile-on', type: 'checkbox', checked: st.on });
  const save = () => {
    const next = { on: on.checked, url: url.value.trim() || OSM_TEMPLATE };
    localStorage.setItem(TILE_KEY, JSON.stringify(next));
    onChange(next.on ? next.url : null);
  };
  on.addEventListener('change', save);
  url.addEventListener('change', save);
  return h('details', { class: 'tiles' },
    h('summary', {}, 'Street map tiles'),
    h('p', { class: 'hint' }, 'Needs internet. Without tiles the map shows bins and routes on a plain background.'),
    h('div', { class: 'check' }, on, h('label', { for: 'tile-on' }, 'Show street tiles')),
    h('label', { for: 'tile-url' }, 'Tile URL template ({z}/{x}/{y})'), url);
}

export function filterBins(bins, { site, minFill, offline }) {
  return bins.filter((b) => (!site || b.site === site)
    && (!minFill || (shownFill(b) !== null && shownFill(b) !== undefined && shownFill(b) * 100 >= minFill))
    && (!offline || b.online === false));
}

const DAY_MS = 86_400_000;

/**
 * What a dispatcher must act on now: cameras offline (no fill to plan with) and what drivers found in
 * the last 24 h (blocked, overflowing: the latest report per bin). Null when there is nothing.
 */
export function attentionItems(bins, reports) {
  const byId = new Map(bins.map((b) => [b.id, b]));
  const latest = new Map();
  for (const r of reports) latest.set(r.bin_id, r);
  return {
    offline: bins.filter((b) => b.online === false),
    reported: [...latest.values()].filter((r) => r.status !== 'done').reverse().map((r) => ({ ...r, bin: byId.get(r.bin_id) })),
  };
}

function attentionPanel(items, pick) {
  const where = (b) => (b ? [b.name && b.name !== b.id ? b.name : null, b.address].filter(Boolean).join(' · ') : '');
  const binButton = (id, b) => (b ? h('button', { type: 'button', class: 'link', onclick: () => pick(b) }, id) : h('strong', {}, id));
  const lines = (entries) => h('ul', {}, entries.map(([id, b, text]) => h('li', {},
    binButton(id, b), ' ', h('span', { class: 'hint urgent-when' }, text),
    where(b) ? h('span', { class: 'urgent-where' }, where(b)) : null)));
  return [
    h('h2', { id: 'attention-title' }, 'Needs attention'),
    items.reported.length ? h('section', { class: 'urgent-group', 'data-attention': 'reported' },
      h('h3', {}, "Drivers' reports, last 24 h ", h('span', { class: 'count' }, `(${items.reported.length})`)),
      lines(items.reported.map((r) => [r.bin_id, r.bin, `${r.status} ${relative(r.ts)}${r.note ? `: ${r.note}` : ''}`]))) : null,
    items.offline.length ? h('section', { class: 'urgent-group', 'data-attention': 'offline' },
      h('h3', {}, 'Cameras offline ', h('span', { class: 'count' }, `(${items.offline.length})`)),
      lines(items.offline.map((b) => [b.id, b, b.last_seen ? `last seen ${relative(b.last_seen)}` : 'never seen']))) : null,
  ];
}

function urgentGroup(title, id, bins, pick) {
  const rest = bins.length - URGENT_SHOWN;
  return h('section', { class: 'urgent-group', 'data-urgent': id },
    h('h3', {}, `${title} `, h('span', { class: 'count' }, `(${bins.length})`)),
    bins.length
      ? h('ul', {}, bins.slice(0, URGENT_SHOWN).map((b) => {
        // Where it is, in words a dispatcher passes to a driver: name and street address.
        const where = [b.name && b.name !== b.id ? b.name : null, b.address].filter(Boolean).join(' · ');
        return h('li', {},
          h('button', { type: 'button', class: 'link', onclick: () => pick(b) }, b.id), ' ',
          fillBadge(shownFill(b)), ' ', h('span', { class: 'hint urgent-when' }, timeToFull(b.forecast).replace(/ \(.*\)$/, '')),
          where ? h('span', { class: 'urgent-where' }, where) : null);
      }),
      rest > 0 ? h('li', { class: 'hint' }, `and ${plural(rest, 'more bin')}`) : null)
      : h('p', { class: 'hint' }, 'None.'));
}

export default {
  id: 'map',
  title: 'Map',
  ability: 'map',
  // long: one view, its controls and their wiring; the parts it draws are the functions above
  mount(container, ctx) {
    let bins = [];
    let selected = null;
    let timer = null;
    let listTimer = null;
    const filters = { site: '', minFill: 0, offline: false };
    const phone = window.matchMedia(PHONE);

    const site = h('select', { id: 'f-site' }, h('option', { value: '' }, 'All sites'));
    const minFill = h('input', { id: 'f-fill', type: 'number', min: 0, max: 100, step: 5, value: 0, inputmode: 'numeric' });
    const offline = h('input', { id: 'f-offline', type: 'checkbox' });
    const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
    const closeBtn = h('button', { type: 'button', class: 'btn btn-quiet sheet-close', 'aria-label': 'Close the details', onclick: () => closeDetails() }, '×');
    const detailsBody = h('div', { class: 'details-body' }, h('p', { class: 'hint' }, 'Hover or click a bin for details.'));
    const details = h('aside', { class: 'panel details', id: 'bin-details', 'aria-label': 'Selected bin' }, closeBtn, detailsBody);
    const urgent = h('section', { class: 'panel urgent', id: 'urgent', 'aria-labelledby': 'urgent-title' });
    const attention = h('section', { class: 'panel urgent attention', id: 'attention', 'aria-labelledby': 'attention-title', hidden: true });
    let reports = [];
    const listHost = h('div', { class: 'bin-list' });
    const listHead = h('h2', { id: 'list-title' }, 'Bins in view');
    const mapHost = h('div', { class: 'map-host' });
    const legend = h('ul', { class: 'legend' },
      [0, 0.25, 0.5, 0.75, 1].map((f) => h('li', {}, h('span', { class: 'swatch', style: { background: fillColor(f) } }), `${f * 100}%`)),
      h('li', {}, h('span', { class: 'swatch', style: { background: fillColor(null) } }), 'no reading'),
      h('li', {}, h('span', { class: 'swatch swatch-offline', 'aria-hidden': 'true' }, '×'), 'offline'),
      h('li', {}, h('span', { class: 'swatch swatch-flag', 'aria-hidden': 'true' }, '▲'), 'overflowing or contaminated'),
      h('li', {}, h('span', { class: 'swatch swatch-cluster', 'aria-hidden': 'true' }, '3'), 'bins close together (click to zoom)'));

    const form = h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: 'f-site' }, 'Site'), site),
      h('div', { class: 'field' }, h('label', { for: 'f-fill' }, 'Fill at least (%)'), minFill),
      h('div', { class: 'field check' }, offline, h('label', { for: 'f-offline' }, 'Offline only')));

    replace(container,
      h('div', { class: 'page-head' }, h('h1', {}, 'Bins'), summary),
      form,
      h('div', { class: 'map-layout' },
        h('div', { class: 'map-col' }, mapHost, legend, tileControls((tpl) => map.setTiles(tpl))),
        h('div', { class: 'side-col' }, attention, urgent, details)),
      listHead,
      listHost);

    const map = new MapView(mapHost, {
      label: 'Map of bins',
      describe: (bin) => binDetails(bin),
      onSelect: (bin) => choose(bin),
      // The list follows the map: after a pan or zoom it shows the bins now in view.
      onView: () => { clearTimeout(listTimer); listTimer = setTimeout(renderList, 120); },
    });
    const st = tileSettings();
    if (st.on) map.setTiles(st.url);

    function detailsOf(bin) {
      return [binDetails(bin), ctx.can('cameras')
        ? h('p', {}, h('a', { href: `#/cameras/${encodeURIComponent(bin.id)}` }, `Fill history and device of ${bin.id}`)) : null];
    }

    function closeDetails() {
      details.classList.remove('open');
      selected = null;
      map.select(null);
      replace(detailsBody, h('p', { class: 'hint' }, 'Hover or click a bin for details.'));
    }

    function choose(bin) {
      selected = bin.id;
      map.select(bin.id);
      replace(detailsBody, detailsOf(bin));
      details.classList.add('open');
      // Show the details where the user is looking: a sheet on phones; on a narrow screen, scrolled to.
      if (phone.matches) {
        keepAboveSheet(bin);
      } else {
        const r = details.getBoundingClientRect();
        if (r.top > window.innerHeight || r.bottom < 0) details.scrollIntoView({ block: 'nearest' });
      }
    }

    /** On a phone, scroll so the tapped bin is not under the sheet: midway in the space above it. */
    function keepAboveSheet(bin) {
      if (!Number.isFinite(bin.lat) || !Number.isFinite(bin.lon)) return;
      const sheetTop = details.getBoundingClientRect().top;
      const y = map.svg.getBoundingClientRect().top + map.toScreen(bin.lat, bin.lon)[1];
      if (y > sheetTop - 24 || y < 0) window.scrollBy(0, y - sheetTop / 2);
    }

    function pick(bin) {
      if (Number.isFinite(bin.lat) && Number.isFinite(bin.lon)) map.centerOn(bin.lat, bin.lon);
      choose(bin);
    }

    function renderAttention() {
      const items = attentionItems(bins, reports);
      attention.hidden = !items.offline.length && !items.reported.length;
      replace(attention, attention.hidden ? null : attentionPanel(items, pick));
    }

    function renderUrgent(shown) {
      const u = urgency(shown);
      replace(urgent,
        h('h2', { id: 'urgent-title' }, 'Reaching full'),
        h('p', { class: 'hint' }, 'By the forecast of when each bin reaches the full threshold.'),
        urgentGroup('Today', 'today', u.today, pick),
        urgentGroup('Tomorrow', 'tomorrow', u.tomorrow, pick),
        urgentGroup('Later', 'later', u.later, pick),
        u.unforecast ? h('p', { class: 'hint' }, `${plural(u.unforecast, 'bin')} without a forecast.`) : null);
    }

    function renderList() {
      const shown = filterBins(bins, filters);
      const inView = shown.filter((b) => map.inView(b.lat, b.lon));
      listHead.textContent = inView.length === shown.length ? 'Bins in view' : `Bins in view (${inView.length} of ${shown.length}: pan or zoom out for the others)`;
      // The list is for reading and keyboard access; past a few hundred rows the filters serve better.
      const sorted = inView.slice().sort((a, b) => (shownFill(b) ?? -1) - (shownFill(a) ?? -1)).slice(0, LIST_MAX);
      keepFocus(listHost, 'data-bin-row', () => replace(listHost, table([
        { label: 'Bin', value: (b) => h('button', { type: 'button', class: 'link', onclick: () => pick(b) }, b.id) },
        { label: 'Site', value: (b) => b.site || '–' },
        { label: 'Fill', value: (b) => [fillBadge(shownFill(b)), classFlag(b)] },
        { label: 'Forecast', value: (b) => timeToFull(b.forecast) },
        { label: 'Last reading', value: (b) => (b.fill_ts ? relative(b.fill_ts) : 'none') },
        { label: 'Device', value: (b) => deviceState(b) },
      ], sorted, { caption: inView.length > LIST_MAX ? `The ${LIST_MAX} fullest of ${inView.length} bins in view (zoom or filter to see others)` : 'Bins, fullest first', rowAttrs: (b) => ({ 'data-bin-row': b.id }), empty: shown.length ? 'No bins in view: pan or zoom out.' : 'No bins match the filters.' })));
    }

    function render() {
      const shown = filterBins(bins, filters);
      const off = bins.filter((b) => b.online === false).length;
      const full = bins.filter((b) => shownFill(b) !== null && shownFill(b) !== undefined && shownFill(b) >= 0.8).length;
      const unplaced = shown.filter((b) => !Number.isFinite(b.lat) || !Number.isFinite(b.lon)).length;
      if (!bins.length) {
        summary.textContent = 'No bins yet: import them with `binsight server bins import FILE --config server.toml`.';
        map.setBins([]);
        replace(listHost);
        replace(urgent);
        return;
      }
      const flagged = bins.filter((b) => b.flag).length;
      summary.textContent = `${shown.length} of ${plural(bins.length, 'bin')} shown · ${full} at ${pct(0.8)} or more · ${off} offline`
        + (flagged ? ` · ${flagged} overflowing or contaminated` : '')
        + (unplaced ? ` · ${unplaced} without a position (import them with bins import)` : '');
      map.setBins(shown);
      renderAttention();
      renderUrgent(shown);
      renderList();
      if (selected) {
        const b = bins.find((x) => x.id === selected);
        if (b) replace(detailsBody, detailsOf(b));
      }
    }

    async function load() {
      try {
        bins = await api('/api/bins');
      } catch (err) {
        summary.textContent = `Could not load bins: ${err.message}`;
        return;
      }
      // The drivers' reports are the dispatcher's to read (operators); others see the cameras only.
      if (ctx.can('plan')) {
        try {
          reports = await api(`/api/stop-reports?since=${Date.now() - DAY_MS}`);
        } catch { reports = []; }
      }
      const sites = [...new Set(bins.map((b) => b.site).filter(Boolean))].sort();
      const current = site.value;
      replace(site, h('option', { value: '' }, 'All sites'), sites.map((x) => h('option', { value: x }, x)));
      site.value = sites.includes(current) ? current : '';
      if (!map.fitted) {
        map.bins = filterBins(bins, filters);
        map.fitAll();
      }
      render();
    }

    const onEscape = (e) => { if (e.key === 'Escape' && details.classList.contains('open')) closeDetails(); };
    document.addEventListener('keydown', onEscape);
    site.addEventListener('change', () => { filters.site = site.value; render(); });
    minFill.addEventListener('input', () => { filters.minFill = Number(minFill.value) || 0; render(); });
    offline.addEventListener('change', () => { filters.offline = offline.checked; render(); });

    load();
    timer = setInterval(load, 60_000);
    return () => {
      clearInterval(timer);
      clearTimeout(listTimer);
      document.removeEventListener('keydown', onEscape);
      map.destroy();
    };
  },
};
