// What an operator wants to know about one bin, as a definition list.
import { h } from '../dom.js';
import { fillColor, fillTextColor, shownFill } from '../colors.js';
import { dateTime, duration, pct, relative } from '../format.js';

export function fillBadge(fill) {
  return h('span', { class: 'fill-badge', style: { background: fillColor(fill), color: fillTextColor(fill) } }, pct(fill));
}

/** "overflowing" / "contaminated" when the bin's latest class flags it (null otherwise). */
export function classFlag(bin) {
  return bin.flag ? h('span', { class: 'class-flag', 'data-flag': bin.flag }, `⚠ ${bin.flag}`) : null;
}

/** The latest class and its probability: "overflowing (81%)"; '–' without a class head. */
export function classText(bin) {
  if (!bin.label) return '–';
  return bin.label_prob === null || bin.label_prob === undefined ? bin.label : `${bin.label} (${pct(bin.label_prob)})`;
}

export function stateBadge(bin) {
  if (bin.online === true) return h('span', { class: 'state state-online' }, 'online');
  if (bin.online === false) return h('span', { class: 'state state-offline' }, 'offline');
  return h('span', { class: 'state state-unknown' }, 'no device');
}

/** Why a camera is offline, worded to follow the "offline" badge without repeating it. */
export function offlineReason(reason) {
  if (!reason) return '';
  if (/^offline message/.test(reason)) return `sent its offline message${reason.slice('offline message'.length)}`;
  return reason.replace(/^offline:?\s*/i, '');
}

/** The device badge and, when offline, why: "offline · silent for 3 h ...". */
export function deviceState(bin) {
  const why = bin.online === false ? offlineReason(bin.offline_reason) : '';
  return [stateBadge(bin), why ? h('span', { class: 'state-why' }, ` · ${why}`) : null];
}

export function timeToFull(forecast, now = Date.now()) {
  if (!forecast || !forecast.full_ts) return 'not forecast';
  if (forecast.full_ts <= now) {
    return now - forecast.full_ts < 60_000 ? 'full now' : `full now (since ${duration(now - forecast.full_ts)})`;
  }
  // "full in 2 d 3 h (between in 1 d and in 3 d)" reads badly: the band gets plain durations,
  // and a band that already began starts at "now", not at "0 s".
  const band = forecast.low_ts && forecast.high_ts && forecast.high_ts - forecast.low_ts >= 60_000
    ? ` (${forecast.low_ts - now < 60_000 ? 'now' : duration(forecast.low_ts - now)} to ${duration(forecast.high_ts - now)})` : '';
  return `full ${relative(forecast.full_ts, now)}${band}`;
}

/** The newest raw reading beside the smoothed fill, when they differ by a visible point or more. */
function rawNote(bin) {
  const smooth = bin.fill_smooth;
  if (smooth === null || smooth === undefined || bin.fill === null || bin.fill === undefined) return '';
  return Math.abs(bin.fill - smooth) >= 0.01 ? h('span', { class: 'hint' }, ` smoothed; last reading ${pct(bin.fill)}`) : '';
}

export function binDetails(bin) {
  const row = (term, ...desc) => [h('dt', {}, term), h('dd', {}, ...desc)];
  return h('div', { class: 'bin-details' },
    h('h3', {}, bin.name && bin.name !== bin.id ? `${bin.name} (${bin.id})` : bin.id),
    h('dl', {},
      bin.address ? row('Address', bin.address) : null,
      row('Fill', fillBadge(shownFill(bin)), rawNote(bin), bin.quality && bin.quality !== 'ok' ? ` last frame ${bin.quality}` : '', classFlag(bin)),
      bin.label ? row('Class', classText(bin)) : null,
      row('Forecast', timeToFull(bin.forecast)),
      row('Fill rate', bin.forecast && bin.forecast.rate_per_day !== null && bin.forecast.rate_per_day !== undefined
        ? `${pct(bin.forecast.rate_per_day, 1)} per day` : '–'),
      row('Last reading', bin.fill_ts ? `${relative(bin.fill_ts)} (${dateTime(bin.fill_ts)})` : 'none yet'),
      row('Device', deviceState(bin)),
      row('Last seen', bin.last_seen ? relative(bin.last_seen) : '–'),
      row('Site', bin.site || '–'),
      row('Capacity', bin.capacity_l ? `${bin.capacity_l} L` : '–'),
      bin.last_error ? row('Last error', bin.last_error) : null));
}
