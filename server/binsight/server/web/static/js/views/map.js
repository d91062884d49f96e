// Map: every bin coloured by its latest fill; filters; details on hover or click; a sortable list.
import { api } from '../api.js';
import { fillColor } from '../colors.js';
import { h, keepFocus, replace, table } from '../dom.js';
import { relative } from '../format.js';
import { MapView } from '../mapview.js';
import { binDetails, fillBadge, stateBadge, timeToFull } from './bininfo.js';

export const OSM_TEMPLATE = 'https://tile.openstreetmap.org/{z}/{x}/{y}.png';
const TILE_KEY = 'binsight.tiles';
const LIST_MAX = 300;

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
    && (!minFill || (b.fill !== null && b.fill !== undefined && b.fill * 100 >= minFill))
    && (!offline || b.online === false));
}

export default {
  id: 'map',
  title: 'Map',
  ability: 'map',
  mount(container, ctx) {
    let bins = [];
    let selected = null;
    let timer = null;
    const filters = { site: '', minFill: 0, offline: false };

    const site = h('select', { id: 'f-site' }, h('option', { value: '' }, 'All sites'));
    const minFill = h('input', { id: 'f-fill', type: 'number', min: 0, max: 100, step: 5, value: 0, inputmode: 'numeric' });
    const offline = h('input', { id: 'f-offline', type: 'checkbox' });
    const summary = h('p', { class: 'summary', 'aria-live': 'polite' });
    const details = h('aside', { class: 'panel details', 'aria-label': 'Selected bin' },
      h('p', { class: 'hint' }, 'Hover or click a bin for details.'));
    const listHost = h('div', { class: 'bin-list' });
    const mapHost = h('div', { class: 'map-host' });
    const legend = h('ul', { class: 'legend' },
      [0, 0.25, 0.5, 0.75, 1].map((f) => h('li', {}, h('span', { class: 'swatch', style: { background: fillColor(f) } }), `${f * 100}%`)),
      h('li', {}, h('span', { class: 'swatch', style: { background: fillColor(null) } }), 'no reading'),
      h('li', {}, h('span', { class: 'swatch swatch-offline', 'aria-hidden': 'true' }, '×'), 'offline'));

    const form = h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: 'f-site' }, 'Site'), site),
      h('div', { class: 'field' }, h('label', { for: 'f-fill' }, 'Fill at least (%)'), minFill),
      h('div', { class: 'field check' }, offline, h('label', { for: 'f-offline' }, 'Offline only')));

    replace(container,
      h('div', { class: 'page-head' }, h('h1', {}, 'Bins'), summary),
      form,
      h('div', { class: 'map-layout' },
        h('div', { class: 'map-col' }, mapHost, legend, tileControls((tpl) => map.setTiles(tpl))),
        details),
      h('h2', {}, 'Bins in view'),
      listHost);

    const map = new MapView(mapHost, {
      label: 'Map of bins',
      describe: (bin) => binDetails(bin),
      onSelect: (bin) => choose(bin),
    });
    const st = tileSettings();
    if (st.on) map.setTiles(st.url);

    function detailsOf(bin) {
      return [binDetails(bin), ctx.can('cameras')
        ? h('p', {}, h('a', { href: `#/cameras/${encodeURIComponent(bin.id)}` }, `Fill history and device of ${bin.id}`)) : null];
    }

    function choose(bin) {
      selected = bin.id;
      map.select(bin.id);
      replace(details, detailsOf(bin));
    }

    function render() {
      const shown = filterBins(bins, filters);
      const off = bins.filter((b) => b.online === false).length;
      const full = bins.filter((b) => b.fill !== null && b.fill >= 0.8).length;
      const unplaced = shown.filter((b) => !Number.isFinite(b.lat) || !Number.isFinite(b.lon)).length;
      if (!bins.length) {
        summary.textContent = 'No bins yet: import them with `binsight server bins import FILE --config server.toml`.';
        map.setBins([]);
        replace(listHost);
        return;
      }
      summary.textContent = `${shown.length} of ${bins.length} bins shown · ${full} at 80% or more · ${off} offline`
        + (unplaced ? ` · ${unplaced} without a position (import them with bins import)` : '');
      map.setBins(shown);
      // The list is for reading and keyboard access; past a few hundred rows the filters serve better.
      const sorted = shown.slice().sort((a, b) => (b.fill ?? -1) - (a.fill ?? -1)).slice(0, LIST_MAX);
      keepFocus(listHost, 'data-bin-row', () => replace(listHost, table([
        { label: 'Bin', value: (b) => h('button', { type: 'button', class: 'link', onclick: () => { choose(b); map.centerOn(b.lat, b.lon); } }, b.id) },
        { label: 'Site', value: (b) => b.site || '–' },
        { label: 'Fill', value: (b) => fillBadge(b.fill) },
        { label: 'Forecast', value: (b) => timeToFull(b.forecast) },
        { label: 'Last reading', value: (b) => (b.fill_ts ? relative(b.fill_ts) : 'none') },
        { label: 'Device', value: (b) => [stateBadge(b), b.online === false && b.offline_reason ? ` ${b.offline_reason}` : ''] },
      ], sorted, { caption: shown.length > LIST_MAX ? `The ${LIST_MAX} fullest of ${shown.length} bins (filter to see others)` : 'Bins, fullest first', rowAttrs: (b) => ({ 'data-bin-row': b.id }), empty: 'No bins match the filters.' })));
      if (selected) {
        const b = bins.find((x) => x.id === selected);
        if (b) replace(details, detailsOf(b));
      }
    }

    async function load() {
      try {
        bins = await api('/api/bins');
      } catch (err) {
        summary.textContent = `Could not load bins: ${err.message}`;
        return;
      }
      const sites = [...new Set(bins.map((b) => b.site).filter(Boolean))].sort();
      const current = site.value;
      replace(site, h('option', { value: '' }, 'All sites'), sites.map((x) => h('option', { value: x }, x)));
      site.value = sites.includes(current) ? current : '';
      render();
      if (!map.fitted) map.fitAll();
    }

    site.addEventListener('change', () => { filters.site = site.value; render(); });
    minFill.addEventListener('input', () => { filters.minFill = Number(minFill.value) || 0; render(); });
    offline.addEventListener('change', () => { filters.offline = offline.checked; render(); });

    load();
    timer = setInterval(load, 60_000);
    return () => { clearInterval(timer); map.destroy(); };
  },
};
