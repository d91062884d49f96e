// Formatting for people: percentages, ages, times, distances. Timestamps are epoch milliseconds.

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

export function pct(fill, digits = 0) {
  if (fill === null || fill === undefined || Number.isNaN(fill)) return '–';
  return `${(fill * 100).toFixed(digits)}%`;
}

/** "3 min", "5 h 10 min", "2 d 4 h" for a duration in ms (absolute value). */
export function duration(ms) {
  const a = Math.abs(ms);
  if (a < MIN) return `${Math.round(a / 1000)} s`;
  if (a < HOUR) return `${Math.round(a / MIN)} min`;
  if (a < DAY) {
    const h = Math.floor(a / HOUR);
    const m = Math.round((a - h * HOUR) / MIN);
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  const d = Math.floor(a / DAY);
  const h = Math.round((a - d * DAY) / HOUR);
  return h ? `${d} d ${h} h` : `${d} d`;
}

/** "5 min ago" / "in 2 d 3 h" relative to now. */
export function relative(ts, now = Date.now()) {
  if (ts === null || ts === undefined) return '–';
  const diff = ts - now;
  return diff < 0 ? `${duration(diff)} ago` : `in ${duration(diff)}`;
}

export function dateTime(ts) {
  if (ts === null || ts === undefined) return '–';
  return new Date(ts).toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
  });
}

export function shortDateTime(ts) {
  if (ts === null || ts === undefined) return '–';
  return new Date(ts).toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** A route time: "HH:MM" strings pass through, minutes after midnight become "HH:MM". */
export function clock(t) {
  if (t === null || t === undefined || t === '') return '–';
  if (typeof t === 'string') return t;
  const m = Math.round(t);
  const hh = Math.floor(m / 60);
  const mm = m % 60;
  return `${String(hh).padStart(2, '0')}:${String(mm).padStart(2, '0')}`;
}

export function km(x) {
  if (x === null || x === undefined) return '–';
  return `${x.toFixed(x < 10 ? 1 : 0)} km`;
}

export function litres(x) {
  if (x === null || x === undefined) return '–';
  return `${Math.round(x).toLocaleString()} L`;
}

export function minutes(x) {
  if (x === null || x === undefined) return '–';
  return duration(x * MIN);
}

export function num(x, digits = 3) {
  if (x === null || x === undefined || typeof x !== 'number') return '–';
  return x.toFixed(digits);
}
