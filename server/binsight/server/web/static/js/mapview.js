// An SVG map in Web Mercator: bins, routes, depots and disposal sites on a plain background with a scale bar,
// and an optional raster tile layer. Pan by dragging or arrow keys, zoom with the wheel, +/- or the buttons.
import { h, replace, s } from './dom.js';
import { fillColor, fillTextColor, routeColor, shownFill, textOn } from './colors.js';
import { bounds, fit, project, scaleBar, tileUrl, unproject } from './geo.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
const MIN_ZOOM = 2;
const MAX_ZOOM = 19;
const MAX_TILES = 80;
// Route lines sit this many pixels right of their direction of travel: a return leg runs beside the outbound one.
const ROUTE_OFFSET = 3;
const STOP_R = 9;

/**
 * Screen points [{x, y, item}] grouped so that no two groups' seeds lie closer than `gap` pixels:
 * [{x, y, items}] (a group sits at its first point). A grid of gap-sized cells keeps it linear.
 */
export function clusterPoints(points, gap) {
  const cells = new Map();
  const groups = [];
  for (const p of points) {
    const cx = Math.floor(p.x / gap);
    const cy = Math.floor(p.y / gap);
    let best = null;
    let bestD = gap;
    for (let i = -1; i <= 1; i += 1) {
      for (let j = -1; j <= 1; j += 1) {
        for (const g of cells.get(`${cx + i},${cy + j}`) || []) {
          const d = Math.hypot(g.x - p.x, g.y - p.y);
          if (d < bestD) { best = g; bestD = d; }
        }
      }
    }
    if (best) {
      best.items.push(p.item);
      continue;
    }
    const g = { x: p.x, y: p.y, items: [p.item] };
    groups.push(g);
    const key = `${cx},${cy}`;
    if (!cells.has(key)) cells.set(key, []);
    cells.get(key).push(g);
  }
  return groups;
}

/** A polyline [[x, y]] shifted `d` pixels to the right of its direction of travel (mitred corners). */
export function offsetLine(points, d) {
  const pts = points.filter((p, i) => i === 0 || Math.hypot(p[0] - points[i - 1][0], p[1] - points[i - 1][1]) > 0.01);
  if (pts.length < 2) return pts;
  const normals = [];
  for (let i = 0; i < pts.length - 1; i += 1) {
    const dx = pts[i + 1][0] - pts[i][0];
    const dy = pts[i + 1][1] - pts[i][1];
    const len = Math.hypot(dx, dy);
    normals.push([-dy / len, dx / len]);
  }
  return pts.map((p, i) => {
    const a = normals[Math.max(0, i - 1)];
    const b = normals[Math.min(normals.length - 1, i)];
    let nx = a[0] + b[0];
    let ny = a[1] + b[1];
    const len = Math.hypot(nx, ny);
    // A U-turn has no mitre: step straight sideways from the turning point.
    if (len < 1e-6) return [p[0] + a[0] * d, p[1] + a[1] * d];
    nx /= len;
    ny /= len;
    const miter = Math.min(2, 1 / Math.max(0.5, nx * b[0] + ny * b[1]));
    return [p[0] + nx * d * miter, p[1] + ny * d * miter];
  });
}

/**
 * Where to draw round badges of radius r for points [[x, y]] so that none covers another: each
 * keeps its place when free, else moves to the first free spot on rings around it; `obstacles` (other
 * markers, e.g. depots) are kept clear too. Returns [[x, y]].
 */
export function placeBadges(points, r, obstacles = []) {
  const placed = [];
  const taken = (x, y) => obstacles.some(([ox, oy]) => Math.hypot(ox - x, oy - y) < 2 * r + 3);
  const free = (x, y) => !taken(x, y) && placed.every(([px, py]) => Math.hypot(px - x, py - y) >= 2 * r + 1);
  for (const [x, y] of points) {
    let spot = free(x, y) ? [x, y] : null;
    for (let ring = 1; !spot && ring <= 4; ring += 1) {
      for (let k = 0; k < 8 * ring && !spot; k += 1) {
        const angle = -Math.PI / 2 + (2 * Math.PI * k) / (8 * ring);
        const cx = x + Math.cos(angle) * ring * (2 * r + 2);
        const cy = y + Math.sin(angle) * ring * (2 * r + 2);
        if (free(cx, cy)) spot = [cx, cy];
      }
    }
    placed.push(spot || [x, y]);
  }
  return placed;
}

export class MapView {
  /**
   * @param {HTMLElement} host where the map goes
   * @param {{label: string, onSelect?: Function, describe?: Function}} options
   *   describe(bin) returns a Node for the hover tooltip; onSelect(bin) is called on click;
   *   onView() after each redraw (the visible area changed: see inView).
   */
  constructor(host, { label = 'Map', onSelect = null, describe = null, onView = null } = {}) {
    this.onSelect = onSelect;
    this.describe = describe;
    this.onView = onView;
    // Bins drawn as one marker each, spread on a ring: {ids, lat, lon, zoom} (a cluster that zooming cannot split).
    this.spread = null;
    this.clusters = new Map();
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
      'aria-label': `${label}. Drag or use the arrow keys to pan, + and - to zoom (pinch on a touch screen).`,
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

  /** Whether a position is inside the drawn area (the list beside the map shows these). */
  inView(lat, lon) {
    if (!Number.isFinite(lat) || !Number.isFinite(lon)) return false;
    const [x, y] = this.toScreen(lat, lon);
    return x >= 0 && y >= 0 && x <= this.width && y <= this.height;
  }

  /** Zoom to z so that the ground under screen point `from` ends up under `to` (pinch: both move). */
  zoomTo(z, from, to = from) {
    this.userMoved = true;
    const zoom = Math.max(MIN_ZOOM, Math.min(MAX_ZOOM, z));
    const [cx, cy] = project(this.center.lat, this.center.lon, this.zoom);
    const [alat, alon] = unproject(cx + from[0] - this.width / 2, cy + from[1] - this.height / 2, this.zoom);
    const [nx, ny] = project(alat, alon, zoom);
    const [lat, lon] = unproject(nx - to[0] + this.width / 2, ny - to[1] + this.height / 2, zoom);
    this.center = { lat, lon };
    this.zoom = zoom;
    this.requestRender();
  }

  /** Zoom in on a set of points (a cluster), at least `minStep` levels. */
  zoomToPoints(points, minStep = 2) {
    const b = bounds(points);
    if (!b) return;
    const f = fit(b, this.width, this.height, 48, MAX_ZOOM);
    this.userMoved = true;
    this.center = f.center;
    this.zoom = Math.min(MAX_ZOOM, Math.max(f.zoom, this.zoom + minStep));
    this.render();
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
    const a = anchor || [this.width / 2, this.height / 2];
    this.zoomTo(this.zoom + delta, a);
  }

  /** The point of a pointer event in the map's own pixels. */
  local(e) {
    const r = this.svg.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  capture(id) {
    try { this.svg.setPointerCapture(id); } catch { /* a pointer that already ended */ }
  }

  release(id) {
    try { if (this.svg.hasPointerCapture(id)) this.svg.releasePointerCapture(id); } catch { /* ended */ }
  }

  /** A click (no drag, no pinch) on a bin or a cluster. */
  clicked(target) {
    const cluster = target.closest('[data-cluster]');
    if (cluster) { this.openCluster(cluster.dataset.cluster); return; }
    const dot = target.closest('[data-bin]');
    if (dot && this.onSelect) {
      const bin = this.bins.find((b) => b.id === dot.dataset.bin);
      if (bin) this.onSelect(bin);
    }
  }

  /** Zoom into a cluster; when zooming cannot separate its bins (same spot, or the deepest zoom), spread them. */
  openCluster(key) {
    const members = this.clusters.get(key);
    if (!members) return;
    const [x0, y0] = this.toScreen(members[0].lat, members[0].lon);
    const apart = members.some((b) => {
      const [x, y] = this.toScreen(b.lat, b.lon);
      return Math.hypot(x - x0, y - y0) > 0.5;
    });
    if (apart && this.zoom < MAX_ZOOM - 0.01) {
      this.zoomToPoints(members);
      return;
    }
    const lat = members.reduce((sum, b) => sum + b.lat, 0) / members.length;
    const lon = members.reduce((sum, b) => sum + b.lon, 0) / members.length;
    this.spread = { ids: new Set(members.map((b) => b.id)), lat, lon, zoom: this.zoom };
    this.render();
  }

  // long: one place for the pointer gestures (drag, pinch with two pointers, click) and the keys
  bindEvents() {
    // Pointers down on the map, by id: one pans, two pinch (zoom about their midpoint and pan with it).
    const pointers = new Map();
    let drag = null;
    let pinch = null;
    const pinchState = () => {
      const [a, b] = [...pointers.values()];
      return { dist: Math.max(1, Math.hypot(a[0] - b[0], a[1] - b[1])), mid: [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2] };
    };
    this.svg.addEventListener('pointerdown', (e) => {
      if (e.pointerType === 'mouse' && e.button !== 0) return;
      pointers.set(e.pointerId, this.local(e));
      if (pointers.size === 1) {
        drag = { x: e.clientX, y: e.clientY, moved: false };
      } else if (pointers.size === 2) {
        pinch = pinchState();
        for (const id of pointers.keys()) this.capture(id);
        if (drag && drag.moved) this.render();
        drag = { moved: true };
        this.hideTooltip();
      }
    });
    this.svg.addEventListener('pointermove', (e) => {
      if (!pointers.has(e.pointerId)) return;
      pointers.set(e.pointerId, this.local(e));
      if (pinch && pointers.size >= 2) {
        const now = pinchState();
        this.zoomTo(this.zoom + Math.log2(now.dist / pinch.dist), pinch.mid, now.mid);
        pinch = now;
        return;
      }
      if (!drag || drag.x === undefined) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 4) return;
      if (!drag.moved) this.capture(e.pointerId);
      drag.moved = true;
      drag.x = e.clientX;
      drag.y = e.clientY;
      this.hideTooltip();
      this.panBy(-dx, -dy, true);
    });
    const end = (e) => {
      if (!pointers.has(e.pointerId)) return;
      pointers.delete(e.pointerId);
      this.release(e.pointerId);
      if (pinch) {
        // The finger left on the map after a pinch pans on from where it is, never clicks.
        if (pointers.size < 2) pinch = null;
        const [rest] = [...pointers.values()];
        const r = this.svg.getBoundingClientRect();
        drag = rest ? { x: rest[0] + r.left, y: rest[1] + r.top, moved: true } : null;
        if (!rest) this.render();
        return;
      }
      const wasDrag = drag && drag.moved;
      drag = null;
      if (wasDrag) this.render();
      else if (e.type === 'pointerup') this.clicked(e.target);
    };
    this.svg.addEventListener('pointerup', end);
    this.svg.addEventListener('pointercancel', end);
    this.svg.addEventListener('wheel', (e) => {
      e.preventDefault();
      this.zoomBy(e.deltaY < 0 ? 0.5 : -0.5, this.local(e));
    }, { passive: false });
    this.svg.addEventListener('dblclick', (e) => {
      if (e.target.closest('[data-cluster]')) return;
      this.zoomBy(1, this.local(e));
    });
    this.svg.addEventListener('keydown', (e) => {
      const step = 60;
      const moves = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] };
      if (moves[e.key]) { this.panBy(...moves[e.key]); e.preventDefault(); }
      else if (e.key === '+' || e.key === '=') { this.zoomBy(1); e.preventDefault(); }
      else if (e.key === '-' || e.key === '_') { this.zoomBy(-1); e.preventDefault(); }
    });
    this.svg.addEventListener('pointerover', (e) => {
      const cluster = e.target.closest('[data-cluster]');
      if (cluster) { this.showClusterTooltip(cluster.dataset.cluster); return; }
      const target = e.target.closest('[data-bin]');
      if (!target || !this.describe) return;
      const bin = this.bins.find((b) => b.id === target.dataset.bin);
      if (bin) this.showTooltip(bin, target);
    });
    this.svg.addEventListener('pointerout', (e) => {
      if (e.target.closest('[data-bin], [data-cluster]')) this.hideTooltip();
    });
  }

  showClusterTooltip(key) {
    const members = this.clusters.get(key);
    if (!members) return;
    const fullest = members.slice().sort((a, b) => (shownFill(b) ?? -1) - (shownFill(a) ?? -1));
    const names = fullest.slice(0, 5).map((b) => { const f = shownFill(b); return `${b.id} ${f === null || f === undefined ? '–' : `${Math.round(f * 100)}%`}`; });
    replace(this.tooltip, h('strong', {}, `${members.length} bins here`),
      h('ul', { class: 'cluster-list' }, names.map((n) => h('li', {}, n)),
        members.length > 5 ? h('li', {}, `and ${members.length - 5} more`) : null),
      h('p', { class: 'hint' }, 'Click to zoom in.'));
    this.placeTooltip(...this.clusterPoint(members));
  }

  showTooltip(bin) {
    replace(this.tooltip, this.describe(bin));
    const spot = this.drawnAt.get(bin.id);
    this.placeTooltip(...(spot || this.toScreen(bin.lat, bin.lon)));
  }

  placeTooltip(x, y) {
    this.tooltip.hidden = false;
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
    if (this.onView) this.onView();
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

  /** Where a cluster's marker is: at its first bin (see clusterPoints). */
  clusterPoint(members) {
    return this.toScreen(members[0].lat, members[0].lon);
  }

  // long: bins, clusters, the spread ring and the selection ring are drawn together so they agree
  renderBins() {
    // One element per marker (plus one path for all offline crosses): 5,000 bins stay quick to redraw.
    // Markers that would touch merge into a cluster showing its count, coloured by its fullest bin.
    const layer = this.layers.bins;
    layer.replaceChildren();
    this.clusters = new Map();
    this.drawnAt = new Map();
    const r = this.bins.length > 300 ? 5 : 7;
    const d = r * 0.55;
    if (this.spread && Math.abs(this.spread.zoom - this.zoom) > 1e-9) this.spread = null;
    const spread = this.spread;
    const visible = (bin) => {
      if (!Number.isFinite(bin.lat) || !Number.isFinite(bin.lon)) return null;
      const [x, y] = this.toScreen(bin.lat, bin.lon);
      return x < -20 || y < -20 || x > this.width + 20 || y > this.height + 20 ? null : { x, y, item: bin };
    };
    const frag = document.createDocumentFragment();
    let crosses = '';
    // A warning triangle at the top right of a bin (or cluster) whose latest class flags it
    // (overflowing, contaminated): told by shape, beside the fill colour.
    let flags = '';
    const flagAt = (x, y, rr) => {
      const cx = x + rr * 1.1;
      const top = y - rr * 2.1;
      const w = Math.max(5.5, rr);
      flags += `M${cx.toFixed(1)},${top.toFixed(1)}l${w.toFixed(1)},${(1.7 * w).toFixed(1)}h${(-2 * w).toFixed(1)}z`;
    };
    let selected = null;
    const dot = (bin, x, y) => {
      const offline = bin.online === false;
      const el = document.createElementNS(SVG_NS, 'circle');
      el.setAttribute('class', `bin-dot${offline ? ' bin-offline' : ''}${bin.faded ? ' bin-faded' : ''}`);
      el.setAttribute('cx', x.toFixed(1));
      el.setAttribute('cy', y.toFixed(1));
      el.setAttribute('r', String(r));
      el.setAttribute('fill', fillColor(shownFill(bin)));
      el.dataset.bin = bin.id;
      if (bin.flag) {
        el.dataset.flag = bin.flag;
        flagAt(x, y, r);
      }
      frag.append(el);
      this.drawnAt.set(bin.id, [x, y]);
      // A cross through offline cameras: told by shape, not only by colour.
      if (offline) crosses += `M${(x - d).toFixed(1)},${(y - d).toFixed(1)}l${2 * d},${2 * d}m0,${-2 * d}l${-2 * d},${2 * d}`;
      if (bin.id === this.selectedId) selected = [x, y, r + 5];
    };
    // Bins that are route stops lie under their numbered badge: drawn plainly, never in a cluster
    // (a cluster's count beside stop numbers would read as one).
    const stopIds = new Set(this.routes.flatMap((rt) => rt.stops.filter((p) => p.kind === 'bin').map((p) => p.id)));
    for (const bin of this.bins) {
      const at = stopIds.has(bin.id) && visible(bin);
      if (at) dot(bin, at.x, at.y);
    }
    // Faded bins (e.g. not on the shown routes) go underneath, and cluster only among themselves.
    for (const faded of [true, false]) {
      const pts = this.bins.filter((b) => Boolean(b.faded) === faded && !stopIds.has(b.id) && !(spread && spread.ids.has(b.id)))
        .map(visible).filter(Boolean);
      for (const g of clusterPoints(pts, 2 * r + 4)) {
        if (g.items.length === 1) { dot(g.items[0], g.x, g.y); continue; }
        const key = `c${this.clusters.size}`;
        this.clusters.set(key, g.items);
        const fullest = g.items.reduce((m, b) => ((shownFill(b) ?? -1) > (shownFill(m) ?? -1) ? b : m));
        const radius = r + 4 + Math.min(6, Math.log2(g.items.length) * 1.5);
        frag.append(s('g', { class: `bin-cluster${faded ? ' bin-faded' : ''}`, 'data-cluster': key, 'data-count': g.items.length },
          s('circle', { cx: g.x.toFixed(1), cy: g.y.toFixed(1), r: radius.toFixed(1), fill: fillColor(shownFill(fullest)) }),
          s('text', { x: g.x.toFixed(1), y: g.y.toFixed(1), dy: '0.35em', 'text-anchor': 'middle', fill: fillTextColor(shownFill(fullest)), text: String(g.items.length) })));
        if (g.items.some((b) => b.id === this.selectedId)) selected = [g.x, g.y, radius + 4];
        if (g.items.some((b) => b.flag)) flagAt(g.x, g.y, radius);
      }
    }
    if (spread) {
      // Bins at one spot, on a ring around it, each tied to the spot by a thin line.
      const members = this.bins.filter((b) => spread.ids.has(b.id));
      const [cx, cy] = this.toScreen(spread.lat, spread.lon);
      const ring = Math.max(3 * r, (members.length * (2 * r + 4)) / (2 * Math.PI));
      let spokes = '';
      members.forEach((bin, k) => {
        const angle = -Math.PI / 2 + (2 * Math.PI * k) / members.length;
        const x = cx + Math.cos(angle) * ring;
        const y = cy + Math.sin(angle) * ring;
        spokes += `M${cx.toFixed(1)},${cy.toFixed(1)}L${x.toFixed(1)},${y.toFixed(1)}`;
        dot(bin, x, y);
      });
      layer.append(s('path', { class: 'bin-spokes', d: spokes }));
    }
    layer.append(frag);
    if (crosses) layer.append(s('path', { class: 'bin-cross', d: crosses }));
    if (flags) layer.append(s('path', { class: 'bin-flag', d: flags }));
    if (selected) layer.append(s('circle', { class: 'bin-selected', cx: selected[0], cy: selected[1], r: selected[2] }));
  }

  // long: lines, then stop badges placed so that none hides another
  renderRoutes() {
    const lines = this.layers.routes;
    const stops = this.layers.stops;
    lines.replaceChildren();
    stops.replaceChildren();
    const badges = [];
    this.routes.forEach((route, i) => {
      const color = route.color || routeColor(i);
      const pts = route.stops.filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
      // The road between two stops when the server sent it (OSRM), else a straight line.
      const path = [];
      pts.forEach((p, k) => {
        if (k > 0 && Array.isArray(p.path) && p.path.length > 1) {
          for (const [lat, lon] of p.path) path.push(this.toScreen(lat, lon));
        }
        path.push(this.toScreen(p.lat, p.lon));
      });
      const d = offsetLine(path, ROUTE_OFFSET).map(([x, y], k) => `${k ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join('');
      lines.append(s('path', { class: 'route-line', d, stroke: color, 'data-truck': route.truck }));
      let n = 0;
      for (const p of pts) {
        if (p.kind !== 'bin') continue;
        n += 1;
        badges.push({ truck: route.truck, id: p.id, n, color, at: this.toScreen(p.lat, p.lon) });
      }
    });
    // Depots and disposal sites, and their names (about 7 px a letter, from 14 px right of the marker).
    const places = [];
    for (const p of this.places.filter((q) => Number.isFinite(q.lat) && Number.isFinite(q.lon))) {
      const [x, y] = this.toScreen(p.lat, p.lon);
      places.push([x, y]);
      const width = 7 * String(p.label || p.id).length;
      for (let dx = 18; dx < 14 + width; dx += 8) places.push([x + dx, y]);
    }
    const spots = placeBadges(badges.map((b) => b.at), STOP_R, places);
    let leaders = '';
    badges.forEach((b, k) => {
      const [x, y] = spots[k];
      const moved = Math.hypot(x - b.at[0], y - b.at[1]) > 0.5;
      if (moved) leaders += `M${b.at[0].toFixed(1)},${b.at[1].toFixed(1)}L${x.toFixed(1)},${y.toFixed(1)}`;
      stops.append(s('g', { class: `route-stop${moved ? ' route-stop-moved' : ''}`, 'data-truck': b.truck, 'data-stop': b.id, 'data-n': b.n },
        s('circle', { cx: x.toFixed(1), cy: y.toFixed(1), r: STOP_R, fill: b.color }),
        s('text', { x: x.toFixed(1), y: y.toFixed(1), dy: '0.35em', 'text-anchor': 'middle', fill: textOn(b.color), text: String(b.n) }),
        s('title', { text: `${b.truck} stop ${b.n}: ${b.id}` })));
    });
    if (leaders) stops.prepend(s('path', { class: 'stop-leaders', d: leaders }));
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
