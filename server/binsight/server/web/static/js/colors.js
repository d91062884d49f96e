// Colours with text contrast in mind. Fill uses a sequential green -> yellow -> red scale (also told in words);
// routes use a qualitative palette that stays distinct for common colour-vision deficiencies.

const FILL_STOPS = [
  [0.0, [26, 152, 80]],
  [0.5, [254, 224, 139]],
  [0.8, [244, 109, 67]],
  [1.0, [165, 0, 38]],
];

export const NO_READING = '#9aa0a6';

/**
 * The fill a bin is shown, coloured and ranked by: the server's smoothed fill (it only rises between
 * collections, so one wild frame does not paint a bin red), or the raw one where the server has none yet.
 */
export function shownFill(bin) {
  return bin.fill_smooth !== null && bin.fill_smooth !== undefined ? bin.fill_smooth : bin.fill;
}

export function fillColor(fill) {
  if (fill === null || fill === undefined || Number.isNaN(fill)) return NO_READING;
  const f = Math.max(0, Math.min(1, fill));
  for (let i = 1; i < FILL_STOPS.length; i += 1) {
    const [f1, c1] = FILL_STOPS[i];
    const [f0, c0] = FILL_STOPS[i - 1];
    if (f <= f1) {
      const t = (f - f0) / (f1 - f0);
      const c = c0.map((v, k) => Math.round(v + t * (c1[k] - v)));
      return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
    }
  }
  return 'rgb(165, 0, 38)';
}

function luminance([r, g, b]) {
  const lin = (c) => { const v = c / 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** WCAG contrast ratio of two rgb triples. */
export function contrast(a, b) {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
}

function rgb(css) {
  if (css.startsWith('#')) return [1, 3, 5].map((i) => parseInt(css.slice(i, i + 2), 16));
  return css.match(/\d+/g).slice(0, 3).map(Number);
}

/** Black or white text, whichever contrasts more with a CSS colour (#rrggbb or rgb(...)). */
export function textOn(color) {
  const bg = rgb(color);
  return contrast(bg, [0, 0, 0]) >= contrast(bg, [255, 255, 255]) ? '#000' : '#fff';
}

/** Black or white text, whichever contrasts more with the fill colour. */
export function fillTextColor(fill) {
  return textOn(fillColor(fill));
}

// Okabe-Ito plus a few darker extras: distinct in colour and readable on white.
export const ROUTE_COLORS = [
  '#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#7a4f9a', '#8c6d1f', '#000000', '#b2182b',
];

export function routeColor(i) {
  return ROUTE_COLORS[i % ROUTE_COLORS.length];
}
