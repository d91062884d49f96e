// Small SVG charts: a time chart (fill readings, collections, forecast and its band) and an x/y line chart
// (learning curves). Drawn in a fixed viewBox and scaled to the container's width.
import { h, s } from './dom.js';

const W = 760;
const H = 300;
const M = { top: 16, right: 16, bottom: 36, left: 52 };

function niceTicks(min, max, count = 5) {
  const span = max - min || 1;
  const step0 = span / count;
  const pow = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * pow).find((st) => span / st <= count) || step0;
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(+v.toFixed(10));
  return ticks;
}

function timeTicks(t0, t1) {
  const DAY = 86_400_000;
  const HOUR = 3_600_000;
  const span = t1 - t0;
  const steps = [HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY];
  const step = steps.find((st) => span / st <= 8) || 30 * DAY;
  const offset = new Date(t0).getTimezoneOffset() * 60_000;
  const ticks = [];
  for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) ticks.push(t);
  const fmt = step >= DAY
    ? (t) => new Date(t).toLocaleDateString(undefined, { month: 'short', day: 'numeric' })
    : (t) => new Date(t).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit' });
  return { ticks, fmt };
}

function frame(title, desc) {
  return s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': title },
    s('title', { text: title }), desc ? s('desc', { text: desc }) : null);
}

function axes(svg, x, y, xTicks, xFmt, yTicks, yFmt, xLabel, yLabel) {
  const g = s('g', { class: 'axes' });
  for (const v of yTicks) {
    g.append(s('line', { class: 'grid', x1: M.left, x2: W - M.right, y1: y(v), y2: y(v) }),
      s('text', { x: M.left - 6, y: y(v), dy: '0.35em', 'text-anchor': 'end', text: yFmt(v) }));
  }
  for (const t of xTicks) {
    g.append(s('line', { class: 'tick', x1: x(t), x2: x(t), y1: H - M.bottom, y2: H - M.bottom + 4 }),
      s('text', { x: x(t), y: H - M.bottom + 16, 'text-anchor': 'middle', text: xFmt(t) }));
  }
  g.append(s('line', { class: 'axis', x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }),
    s('line', { class: 'axis', x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }));
  if (yLabel) {
    g.append(s('text', { class: 'axis-label', transform: `translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)`,
      'text-anchor': 'middle', text: yLabel }));
  }
  if (xLabel) g.append(s('text', { class: 'axis-label', x: (M.left + W - M.right) / 2, y: H - 4, 'text-anchor': 'middle', text: xLabel }));
  svg.append(g);
}

/**
 * Fill over time.
 * @param {{readings: {ts, fill, fill_smooth?}[], collections: number[], forecast: {points: {ts, fill, low?, high?}[],
 *   full_ts, low_ts, high_ts}|null, threshold?: number, title: string}} data
 */
export function fillChart({ readings, collections = [], forecast = null, threshold = null, title }) {
  const usable = readings.filter((r) => r.fill !== null && r.fill !== undefined);
  const times = [...readings.map((r) => r.ts), ...collections];
  if (forecast) {
    times.push(...(forecast.points || []).map((p) => p.ts));
    for (const k of ['full_ts', 'low_ts', 'high_ts']) if (forecast[k]) times.push(forecast[k]);
  }
  const svg = frame(title, `${usable.length} readings, ${collections.length} collections detected`
    + `${forecast && forecast.full_ts ? `, forecast full ${new Date(forecast.full_ts).toISOString()}` : ''}.`);
  if (!times.length) {
    svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty', text: 'No readings yet' }));
    return svg;
  }
  const t0 = Math.min(...times);
  const t1 = Math.max(...times, t0 + 3_600_000);
  const x = (t) => M.left + ((t - t0) / (t1 - t0)) * (W - M.left - M.right);
  const y = (f) => H - M.bottom - f * (H - M.top - M.bottom);
  const { ticks, fmt } = timeTicks(t0, t1);
  axes(svg, x, y, ticks, fmt, [0, 0.25, 0.5, 0.75, 1], (v) => `${Math.round(v * 100)}%`, null, 'fill');

  if (forecast) {
    const pts = forecast.points || [];
    const banded = pts.filter((p) => p.low !== undefined && p.high !== undefined && p.low !== null && p.high !== null);
    if (banded.length > 1) {
      const upper = banded.map((p) => `${x(p.ts).toFixed(1)},${y(Math.min(1, p.high)).toFixed(1)}`);
      const lower = banded.slice().reverse().map((p) => `${x(p.ts).toFixed(1)},${y(Math.max(0, p.low)).toFixed(1)}`);
      svg.append(s('polygon', { class: 'forecast-band', points: [...upper, ...lower].join(' ') }));
    } else if (forecast.low_ts && forecast.high_ts) {
      // The band is on the time axis: when the bin is likely to be full.
      svg.append(s('rect', { class: 'forecast-band', x: x(forecast.low_ts), y: M.top,
        width: Math.max(2, x(forecast.high_ts) - x(forecast.low_ts)), height: H - M.top - M.bottom }));
    }
    if (pts.length > 1) {
      svg.append(s('path', { class: 'forecast-line',
        d: pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.ts).toFixed(1)},${y(Math.min(1, p.fill)).toFixed(1)}`).join('') }));
    }
    if (forecast.full_ts) {
      svg.append(s('line', { class: 'forecast-full', x1: x(forecast.full_ts), x2: x(forecast.full_ts), y1: M.top, y2: H - M.bottom }));
    }
  }
  if (threshold !== null && threshold !== undefined) {
    // What "full" means (the server's forecast.threshold): forecasts and plans count a bin full here.
    svg.append(s('line', { class: 'threshold', x1: M.left, x2: W - M.right, y1: y(threshold), y2: y(threshold) },
      s('title', { text: `full = ${Math.round(threshold * 100)}% (forecast.threshold)` })),
    s('text', { class: 'threshold-label', x: W - M.right - 4, y: y(threshold) - 5, 'text-anchor': 'end',
      text: `full (${Math.round(threshold * 100)}%)` }));
  }
  for (const c of collections) {
    svg.append(s('line', { class: 'collection', x1: x(c), x2: x(c), y1: M.top, y2: H - M.bottom },
      s('title', { text: `collection detected ${new Date(c).toLocaleString()}` })));
  }
  // The line is the server's smoothed fill (it only rises between collections) and the dots the raw readings,
  // faint. Readings stored before smoothing existed have none: there the raw readings make the line.
  const sorted = usable.slice().sort((a, b) => a.ts - b.ts);
  const smoothed = sorted.filter((r) => r.fill_smooth !== null && r.fill_smooth !== undefined);
  const cs = collections.slice().sort((a, b) => a - b);
  let d = '';
  let prev = null;
  for (const r of sorted) {
    if (r.fill_smooth !== null && r.fill_smooth !== undefined) continue;
    const broke = prev && cs.some((c) => c > prev.ts && c <= r.ts);
    d += `${!prev || broke ? 'M' : 'L'}${x(r.ts).toFixed(1)},${y(r.fill).toFixed(1)}`;
    prev = r;
  }
  if (d) svg.append(s('path', { class: 'reading-line', d }));
  // Break the smoothed line where it falls (a collection the filter found) so a drop is not drawn as a slope.
  let ds = '';
  prev = null;
  for (const r of smoothed) {
    ds += `${!prev || r.fill_smooth < prev.fill_smooth ? 'M' : 'L'}${x(r.ts).toFixed(1)},${y(r.fill_smooth).toFixed(1)}`;
    prev = r;
  }
  if (ds) svg.append(s('path', { class: 'smooth-line', d: ds }));
  const dots = s('g', { class: `reading-dots${smoothed.length ? ' raw' : ''}` });
  const every = Math.max(1, Math.ceil(sorted.length / 300));
  sorted.forEach((r, i) => {
    if (i % every === 0) {
      const sm = r.fill_smooth !== null && r.fill_smooth !== undefined ? `, smoothed ${Math.round(r.fill_smooth * 100)}%` : '';
      dots.append(s('circle', { cx: x(r.ts), cy: y(r.fill), r: 2.2, class: r.historical ? 'historical' : '' },
        s('title', { text: `${new Date(r.ts).toLocaleString()}: ${Math.round(r.fill * 100)}%${sm}${r.historical ? ' (replayed)' : ''}` })));
    }
  });
  svg.append(dots);
  return svg;
}

/** Legend for the fill chart; with ``threshold``, what "full" means. */
export function fillLegend(threshold = null) {
  const item = (cls, text) => h('li', {}, h('span', { class: `swatch ${cls}`, 'aria-hidden': 'true' }), text);
  const full = threshold === null || threshold === undefined ? null
    : item('sw-threshold', `full = ${Math.round(threshold * 100)}% (the server's forecast.threshold: forecasts and plans count a bin full here)`);
  return h('ul', { class: 'legend' },
    item('sw-raw', 'readings (raw)'), item('sw-smooth', 'smoothed fill (only rises between collections)'),
    item('sw-collection', 'detected collection'),
    item('sw-forecast', 'forecast'), item('sw-full', 'forecast full'), item('sw-band', 'likely full between'), full);
}

/** A line chart of y against x: [{name, points: [{x, y}], className}]. */
export function lineChart({ series, title, xLabel, yLabel, yFmt = (v) => String(+v.toFixed(4)) }) {
  const svg = frame(title);
  const pts = series.flatMap((se) => se.points);
  if (!pts.length) {
    svg.append(s('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty', text: 'No data' }));
    return svg;
  }
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const y0 = Math.min(0, ...ys);
  const y1 = Math.max(...ys) * 1.1 || 1;
  const x = (v) => M.left + ((v - x0) / (x1 - x0)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - ((v - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  axes(svg, x, y, niceTicks(x0, x1, 6), (v) => String(v), niceTicks(y0, y1, 5), yFmt, xLabel, yLabel);
  series.forEach((se, i) => {
    const sorted = se.points.slice().sort((a, b) => a.x - b.x);
    svg.append(s('path', { class: `series series-${i}${se.dashed ? ' series-baseline' : ''}`,
      d: sorted.map((p, k) => `${k ? 'L' : 'M'}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join('') }));
    if (se.dashed) return;
    for (const p of sorted) {
      svg.append(s('circle', { class: `series-dot series-${i}`, cx: x(p.x), cy: y(p.y), r: 3.5 },
        s('title', { text: `${p.x}: ${yFmt(p.y)}` })));
    }
  });
  return svg;
}
