// Formatting for people: percentages, ages, times, distances. Timestamps are epoch milliseconds.

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

export function pct(fill, digits = 0) {
  if (fill === null || fill === undefined || Number.isNaN(fill)) return '–';
  return `${(fill * 100).toFixed(digits)}%`;
}

/** "3 min", "5 h 10 min", "2 d 4 h" for a duration in ms (absolute value).
 * Rounds once, to the unit of the smaller part, before splitting: 15 h 59.6 min is "16 h", never "15 h 60 min". */
export function duration(ms) {
  const a = Math.abs(ms);
  const secs = Math.round(a / 1000);
  if (secs < 60) return `${secs} s`;
  const mins = Math.round(a / MIN);
  if (mins < 60) return `${mins} min`;
  if (mins < 24 * 60) {
    const h = Math.floor(mins / 60);
    const m = mins % 60;
    return m ? `${h} h ${m} min` : `${h} h`;
  }
  const hours = Math.round(a / HOUR);
  const d = Math.floor(hours / 24);
  const h = hours % 24;
  return h ? `${d} d ${h} h` : `${d} d`;
}

/** "1 collection", "3 collections": a count with its noun (plural given when not noun + "s"). */
export function plural(n, noun, many = `${noun}s`) {
  return `${n.toLocaleString()} ${n === 1 ? noun : many}`;
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
