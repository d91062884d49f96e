// Web Mercator (EPSG:3857) in "world pixels": the world is 256 * 2^zoom pixels wide.

export const TILE = 256;
const MAX_LAT = 85.05112878;
const EARTH_CIRCUMFERENCE_M = 40075016.686;

export function worldSize(zoom) {
  return TILE * 2 ** zoom;
}

/** [x, y] world pixels of a position at a (fractional) zoom. */
export function project(lat, lon, zoom) {
  const size = worldSize(zoom);
  const phi = (Math.max(-MAX_LAT, Math.min(MAX_LAT, lat)) * Math.PI) / 180;
  const x = ((lon + 180) / 360) * size;
  const y = (0.5 - Math.log(Math.tan(Math.PI / 4 + phi / 2)) / (2 * Math.PI)) * size;
  return [x, y];
}

/** [lat, lon] of world pixels at a zoom. */
export function unproject(x, y, zoom) {
  const size = worldSize(zoom);
  const lon = (x / size) * 360 - 180;
  const n = Math.PI - (2 * Math.PI * y) / size;
  const lat = (180 / Math.PI) * Math.atan(Math.sinh(n));
  return [lat, lon];
}

/** Ground metres per screen pixel at a latitude and zoom. */
export function metersPerPixel(lat, zoom) {
  return (EARTH_CIRCUMFERENCE_M * Math.cos((lat * Math.PI) / 180)) / worldSize(zoom);
}

/** The largest 1, 2 or 5 x 10^n metres that fits in maxPx pixels: {meters, px, label}. */
export function scaleBar(lat, zoom, maxPx = 120) {
  const mpp = metersPerPixel(lat, zoom);
  const maxM = mpp * maxPx;
  const pow = 10 ** Math.floor(Math.log10(maxM));
  const meters = [5, 2, 1].map((f) => f * pow).find((m) => m <= maxM) || pow;
  const label = meters >= 1000 ? `${meters / 1000} km` : `${meters} m`;
  return { meters, px: meters / mpp, label };
}

/** Bounds {south, west, north, east} of positions [{lat, lon}], or null. */
export function bounds(points) {
  const pts = points.filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
  if (!pts.length) return null;
  return {
    south: Math.min(...pts.map((p) => p.lat)),
    north: Math.max(...pts.map((p) => p.lat)),
    west: Math.min(...pts.map((p) => p.lon)),
    east: Math.max(...pts.map((p) => p.lon)),
  };
}

/** Centre and zoom that fit bounds into a width x height viewport with padding. */
export function fit(b, width, height, padding = 32, maxZoom = 17) {
  const [x0, y0] = project(b.north, b.west, 0);
  const [x1, y1] = project(b.south, b.east, 0);
  const dx = Math.max(x1 - x0, 1e-9);
  const dy = Math.max(y1 - y0, 1e-9);
  const zx = Math.log2(Math.max(width - 2 * padding, 1) / dx);
  const zy = Math.log2(Math.max(height - 2 * padding, 1) / dy);
  const zoom = Math.max(1, Math.min(maxZoom, zx, zy));
  const [cx, cy] = project(b.north, b.west, zoom);
  const [ex, ey] = project(b.south, b.east, zoom);
  const c = unproject((cx + ex) / 2, (cy + ey) / 2, zoom);
  return { center: { lat: c[0], lon: c[1] }, zoom };
}

/** Great-circle distance in metres. */
export function haversine(a, b) {
  const R = 6371008.8;
  const toRad = (d) => (d * Math.PI) / 180;
  const dLat = toRad(b.lat - a.lat);
  const dLon = toRad(b.lon - a.lon);
  const h = Math.sin(dLat / 2) ** 2 + Math.cos(toRad(a.lat)) * Math.cos(toRad(b.lat)) * Math.sin(dLon / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}

/** Substitute {z}/{x}/{y}/{s} in a tile URL template. */
export function tileUrl(template, z, x, y) {
  const subdomains = 'abc';
  return template
    .replace('{z}', String(z))
    .replace('{x}', String(x))
    .replace('{y}', String(y))
    .replace('{s}', subdomains[Math.abs(x + y) % subdomains.length]);
}
