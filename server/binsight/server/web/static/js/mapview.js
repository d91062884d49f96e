// An SVG map in Web Mercator: bins, routes, depots and disposal sites on a plain background with a scale bar,
// and an optional raster tile layer. Pan by dragging or arrow keys, zoom with the wheel, +/- or the buttons.
import { h, replace, s } from './dom.js';
import { fillColor, routeColor, textOn } from './colors.js';
import { bounds, fit, project, scaleBar, tileUrl, unproject } from './geo.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const MIN_ZOOM = 2;
const MAX_ZOOM = 19;
const MAX_TILES = 80;

export class MapView {
  /**
   * @param {HTMLElement} host where the map goes
   * @param {{label: string, onSelect?: Function, describe?: Function}} options
   *   describe(bin) returns a Node for the hover tooltip; onSelect(bin) is called on click.
   */
  constructor(host, { label = 'Map', onSelect = null, describe = null } = {}) {
    this.onSelect = onSelect;
    this.describe = describe;
    // The whole world until there is something to fit.
    this.center = { lat: 20, lon: 0 };
    this.zoom = 2;
    this.width = 800;
    this.height = 500;
    this.bins = [];
    this.routes = [];
    this.places = [];
    this.selectedId = null;
    this.tileTemplate = null;
    this.fitted = false;
    this.userMoved = false;

    this.layers = {
      tiles: s('g', { class: 'layer-tiles' }),
      routes: s('g', { class: 'layer-routes' }),
      bins: s('g', { class: 'layer-bins' }),
      stops: s('g', { class: 'layer-stops' }),
      places: s('g', { class: 'layer-places' }),
    };
    this.svg = s('svg', {
      class: 'map-svg', role: 'application', tabindex: '0',
      'aria-label': `${label}. Drag or use the arrow keys to pan, + and - to zoom.`,
    }, s('rect', { class: 'map-bg', x: 0, y: 0, width: '100%', height: '100%' }));
    // While dragging, only this group's transform changes; the layers are redrawn when the drag ends.
    this.view = s('g', { class: 'map-view' },
      this.layers.tiles, this.layers.routes, this.layers.bins, this.layers.stops, this.layers.places);
    this.svg.append(this.view);
    this.dragOffset = [0, 0];
    this.frame = null;
    this.tooltip = h('div', { class: 'map-tooltip', role: 'tooltip', hidden: true });
    this.scale = h('div', { class: 'map-scale', 'aria-hidden': 'true' }, h('div', { class: 'map-scale-bar' }), h('span'));
    this.attribution = h('div', { class: 'map-attribution', hidden: true });
    const btn = (text, title, fn) => h('button', { type: 'button', class: 'btn map-btn', title, 'aria-label': title, onclick: fn }, text);
    this.controls = h('div', { class: 'map-controls' },
      btn('+', 'Zoom in', () => this.zoomBy(1)),
      btn('−', 'Zoom out', () => this.zoomBy(-1)),
      btn('⤢', 'Fit everything in view', () => this.fitAll()));
    this.el = h('div', { class: 'map' }, this.svg, this.controls, this.scale, this.attribution, this.tooltip);
    host.append(this.el);

    this.bindEvents();
    this.resizeObserver = new ResizeObserver(() => this.measure());
    this.resizeObserver.observe(this.el);
    this.measure();
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.el.remove();
  }

  measure() {
    const r = this.el.getBoundingClientRect();
    if (r.width < 10 || r.height < 10) return;
    this.width = r.width;
    this.height = r.height;
    // Until someone pans or zooms, keep everything in view as the map changes size.
    if (!this.userMoved) this.fitAll();
    else this.render();
  }

  setTiles(template) {
    this.tileTemplate = template || null;
    this.render();
  }

  setBins(bins) {
    this.bins = bins;
    this.render();
  }

  /** routes: [{truck, color?, stops: [{id, kind, lat, lon}]}] */
  setRoutes(routes) {
    this.routes = routes;
    this.render();
  }

  /** places: [{id, kind: 'depot'|'disposal', lat, lon}] */
  setPlaces(places) {
    this.places = places;
    this.render();
  }

  select(id) {
    this.selectedId = id;
    this.render();
  }

  allPoints() {
    const pts = [...this.bins, ...this.places];
    for (const r of this.routes) pts.push(...r.stops);
    return pts.filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
  }

  fitAll() {
    this.userMoved = false;
    const b = bounds(this.allPoints());
    if (!b) { this.render(); return; }
    const f = fit(b, this.width, this.height, 48, 17);
    this.center = f.center;
    this.zoom = f.zoom;
    this.fitted = this.width > 10;
    this.render();
  }

  centerOn(lat, lon) {
    this.userMoved = true;
    this.center = { lat, lon };
    this.render();
  }

  toScreen(lat, lon) {
    const [cx, cy] = project(this.center.lat, this.center.lon, this.zoom);
    const [x, y] = project(lat, lon, this.zoom);
    return [x - cx + this.width / 2, y - cy + this.height / 2];
  }

  panBy(dx, dy, live = false) {
    this.userMoved = true;
    const [cx, cy] = project(this.center.lat, this.center.lon, this.zoom);
    const [lat, lon] = unproject(cx + dx, cy + dy, this.zoom);
    this.center = { lat, lon };
    if (live) {
      this.dragOffset = [this.dragOffset[0] - dx, this.dragOffset[1] - dy];
      this.view.setAttribute('transform', `translate(${this.dragOffset[0]} ${this.dragOffset[1]})`);
      this.renderScale();
    } else {
      this.render();
    }
  }

  /** Redraw at the next animation frame (wheel zoom fires faster than a big map redraws). */
  requestRender() {
    if (this.frame !== null) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = null;
      this.render();
    });
  }

  zoomBy(delta, anchor = null) {
    this.userMoved = true;
    const z = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, this.zoom + delta));
    if (anchor) {
      // Keep the point under the cursor where it is.
      const [cx, cy] = project(this.center.lat, this.center.lon, this.zoom);
      const ax = cx + anchor[0] - this.width / 2;
      const ay = cy + anchor[1] - this.height / 2;
      const [alat, alon] = unproject(ax, ay, this.zoom);
      const [nx, ny] = project(alat, alon, z);
      const [lat, lon] = unproject(nx - anchor[0] + this.width / 2, ny - anchor[1] + this.height / 2, z);
      this.center = { lat, lon };
    }
    this.zoom = z;
    this.requestRender();
  }

  bindEvents() {
    let drag = null;
    this.svg.addEventListener('pointerdown', (e) => {
      if (e.button !== 0) return;
      drag = { x: e.clientX, y: e.clientY, moved: false };
    });
    this.svg.addEventListener('pointermove', (e) => {
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) this.svg.setPointerCapture(e.pointerId);
      drag.moved = true;
      drag.x = e.clientX;
      drag.y = e.clientY;
      this.hideTooltip();
      this.panBy(-dx, -dy, true);
    });
    const end = (e) => {
      if (drag && drag.moved && this.svg.hasPointerCapture(e.pointerId)) this.svg.releasePointerCapture(e.pointerId);
      const wasDrag = drag && drag.moved;
      drag = null;
      if (wasDrag) this.render();
      if (!wasDrag && e.type === 'pointerup') {
        const target = e.target.closest('[data-bin]');
        if (target && this.onSelect) {
          const bin = this.bins.find((b) => b.id === target.dataset.bin);
          if (bin) this.onSelect(bin);
        }
      }
    };
    this.svg.addEventListener('pointerup', end);
    this.svg.addEventListener('pointercancel', end);
    this.svg.addEventListener('wheel', (e) => {
      e.preventDefault();
      const r = this.svg.getBoundingClientRect();
      this.zoomBy(e.deltaY < 0 ? 0.5 : -0.5, [e.clientX - r.left, e.clientY - r.top]);
    }, { passive: false });
    this.svg.addEventListener('dblclick', (e) => {
      const r = this.svg.getBoundingClientRect();
      this.zoomBy(1, [e.clientX - r.left, e.clientY - r.top]);
    });
    this.svg.addEventListener('keydown', (e) => {
      const step = 60;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (moves[e.key]) { this.panBy(...moves[e.key]); e.preventDefault(); }
      else if (e.key === '+' || e.key === '=') { this.zoomBy(1); e.preventDefault(); }
      else if (e.key === '-' || e.key === '_') { this.zoomBy(-1); e.preventDefault(); }
    });
    this.svg.addEventListener('pointerover', (e) => {
      const target = e.target.closest('[data-bin]');
      if (!target || !this.describe) return;
      const bin = this.bins.find((b) => b.id === target.dataset.bin);
      if (bin) this.showTooltip(bin, target);
    });
    this.svg.addEventListener('pointerout', (e) => {
      if (e.target.closest('[data-bin]')) this.hideTooltip();
    });
  }

  showTooltip(bin) {
    replace(this.tooltip, this.describe(bin));
    this.tooltip.hidden = false;
    const [x, y] = this.toScreen(bin.lat, bin.lon);
    const tw = this.tooltip.offsetWidth;
    const th = this.tooltip.offsetHeight;
    // Beside the bin (never over it), vertically centred on it and kept inside the map.
    let left = x + 14;
    if (left + tw > this.width - 4) left = x - tw - 14;
    const top = Math.min(Math.max(4, y - th / 2), Math.max(4, this.height - th - 4));
    this.tooltip.style.left = `${Math.max(4, left)}px`;
    this.tooltip.style.top = `${top}px`;
  }

  hideTooltip() {
    this.tooltip.hidden = true;
  }

  render() {
    if (this.frame !== null) {
      cancelAnimationFrame(this.frame);
      this.frame = null;
    }
    this.dragOffset = [0, 0];
    this.view.removeAttribute('transform');
    // Positions change on a redraw: a tooltip left open would point at nothing.
    this.hideTooltip();
    this.renderTiles();
    this.renderRoutes();
    this.renderBins();
    this.renderPlaces();
    this.renderScale();
  }

  renderTiles() {
    const layer = this.layers.tiles;
    layer.replaceChildren();
    this.attribution.hidden = !this.tileTemplate;
    if (!this.tileTemplate) return;
    replace(this.attribution, this.tileTemplate.includes('openstreetmap')
      ? '© OpenStreetMap contributors' : 'Map tiles: configured tile server');
    const zi = Math.max(0, Math.min(MAX_ZOOM, Math.round(this.zoom)));
    const scale = 2 ** (this.zoom - zi);
    const [cx, cy] = project(this.center.lat, this.center.lon, zi);
    const x0 = cx - this.width / 2 / scale;
    const y0 = cy - this.height / 2 / scale;
    const n = 2 ** zi;
    const tx0 = Math.floor(x0 / 256);
    const ty0 = Math.max(0, Math.floor(y0 / 256));
    const tx1 = Math.floor((x0 + this.width / scale) / 256);
    const ty1 = Math.min(n - 1, Math.floor((y0 + this.height / scale) / 256));
    if ((tx1 - tx0 + 1) * (ty1 - ty0 + 1) > MAX_TILES) return;
    const size = 256 * scale;
    for (let ty = ty0; ty <= ty1; ty += 1) {
      for (let tx = tx0; tx <= tx1; tx += 1) {
        const wx = ((tx % n) + n) % n;
        const img = s('image', {
          href: tileUrl(this.tileTemplate, zi, wx, ty),
          x: ((tx * 256 - x0) * scale).toFixed(1),
          y: ((ty * 256 - y0) * scale).toFixed(1),
          width: size + 0.5, height: size + 0.5,
          preserveAspectRatio: 'none',
        });
        img.addEventListener('error', () => img.remove());
        layer.append(img);
      }
    }
  }

  renderBins() {
    // One element per bin (plus one path for all offline crosses): 5,000 bins stay quick to redraw.
    const layer = this.layers.bins;
    layer.replaceChildren();
    const r = this.bins.length > 300 ? 5 : 7;
    const d = r * 0.55;
    // Faded bins (e.g. not on the shown routes) go underneath.
    const order = this.bins.slice().sort((a, b) => Number(Boolean(b.faded)) - Number(Boolean(a.faded)));
    const frag = document.createDocumentFragment();
    let crosses = '';
    let selected = null;
    for (const bin of order) {
      if (!Number.isFinite(bin.lat) || !Number.isFinite(bin.lon)) continue;
      const [x, y] = this.toScreen(bin.lat, bin.lon);
      if (x < -20 || y < -20 || x > this.width + 20 || y > this.height + 20) continue;
      const offline = bin.online === false;
      const dot = document.createElementNS(SVG_NS, 'circle');
      dot.setAttribute('class', `bin-dot${offline ? ' bin-offline' : ''}${bin.faded ? ' bin-faded' : ''}`);
      dot.setAttribute('cx', x.toFixed(1));
      dot.setAttribute('cy', y.toFixed(1));
      dot.setAttribute('r', String(r));
      dot.setAttribute('fill', fillColor(bin.fill));
      dot.dataset.bin = bin.id;
      frag.append(dot);
      // A cross through offline cameras: told by shape, not only by colour.
      if (offline) crosses += `M${(x - d).toFixed(1)},${(y - d).toFixed(1)}l${2 * d},${2 * d}m0,${-2 * d}l${-2 * d},${2 * d}`;
      if (bin.id === this.selectedId) selected = [x, y];
    }
    layer.append(frag);
    if (crosses) layer.append(s('path', { class: 'bin-cross', d: crosses }));
    if (selected) layer.append(s('circle', { class: 'bin-selected', cx: selected[0], cy: selected[1], r: r + 5 }));
  }

  renderRoutes() {
    const lines = this.layers.routes;
    const stops = this.layers.stops;
    lines.replaceChildren();
    stops.replaceChildren();
    this.routes.forEach((route, i) => {
      const color = route.color || routeColor(i);
      const pts = route.stops.filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
      const d = pts.map((p, k) => {
        const [x, y] = this.toScreen(p.lat, p.lon);
        return `${k ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
      }).join('');
      lines.append(s('path', { class: 'route-line', d, stroke: color, 'data-truck': route.truck }));
      let n = 0;
      for (const p of pts) {
        if (p.kind !== 'bin') continue;
        n += 1;
        const [x, y] = this.toScreen(p.lat, p.lon);
        stops.append(s('g', { class: 'route-stop', 'data-truck': route.truck, 'data-stop': p.id },
          s('circle', { cx: x, cy: y, r: 9, fill: color }),
          s('text', { x, y, dy: '0.35em', 'text-anchor': 'middle', fill: textOn(color), text: String(n) }),
          s('title', { text: `${route.truck} stop ${n}: ${p.id}` })));
      }
    });
  }

  renderPlaces() {
    const layer = this.layers.places;
    layer.replaceChildren();
    for (const p of this.places) {
      const [x, y] = this.toScreen(p.lat, p.lon);
      const g = s('g', { class: `place place-${p.kind}`, 'data-place': p.id });
      if (p.kind === 'depot') {
        g.append(s('rect', { x: x - 9, y: y - 9, width: 18, height: 18, rx: 2 }),
          s('text', { x, y, dy: '0.35em', 'text-anchor': 'middle', text: 'H' }));
      } else {
        g.append(s('path', { d: `M${x},${y - 11}L${x + 11},${y}L${x},${y + 11}L${x - 11},${y}Z` }),
          s('text', { x, y, dy: '0.35em', 'text-anchor': 'middle', text: 'T' }));
      }
      g.append(s('text', { class: 'place-label', x: x + 14, y, dy: '0.35em', text: p.label || p.id }),
        s('title', { text: `${p.kind === 'depot' ? 'Depot' : 'Disposal site'} ${p.id}` }));
      layer.append(g);
    }
  }

  renderScale() {
    const sb = scaleBar(this.center.lat, this.zoom, Math.min(140, this.width / 4));
    this.scale.firstChild.style.width = `${sb.px.toFixed(0)}px`;
    this.scale.lastChild.textContent = sb.label;
    this.scale.dataset.meters = String(sb.meters);
  }
}
