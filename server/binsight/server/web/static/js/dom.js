// Tiny DOM helpers. Data never goes through innerHTML: text is always set as text.

const SVG_NS = 'http://www.w3.org/2000/svg';

function apply(el, attrs, svg) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') el.textContent = String(value);
    else if (key === 'class') el.setAttribute('class', value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (!svg && key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** An HTML element: h('button', {class: 'btn', onclick}, 'Save'). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  apply(el, attrs, false);
  append(el, children);
  return el;
}

/** An SVG element. */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  apply(el, attrs, true);
  append(el, children);
  return el;
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table from column specs [{label, value: row => node|string, className}] and rows. */
export function table(columns, rows, { caption, rowAttrs, empty = 'Nothing to show.' } = {}) {
  const thead = h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.className }, c.label))));
  const body = rows.length
    ? rows.map((row, i) =>
        h('tr', rowAttrs ? rowAttrs(row, i) : {},
          columns.map((c) => h('td', { class: c.className, 'data-label': c.label, 'data-short': c.short || c.label }, c.value(row, i)))))
    : [h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, empty))];
  return h('div', { class: 'table-wrap' },
    h('table', {}, caption ? h('caption', {}, caption) : null, thead, h('tbody', {}, body)));
}

/** Show a short message in the page's live region. */
let flashTimer = null;
export function flash(message, kind = 'info') {
  const el = document.getElementById('flash');
  if (!el) return;
  el.textContent = message;
  el.className = `flash flash-${kind}`;
  el.hidden = false;
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 8000 : 4000);
}

/** Take the message down (a new page: an error about the last one no longer applies). */
export function clearFlash() {
  const el = document.getElementById('flash');
  clearTimeout(flashTimer);
  if (el) el.hidden = true;
}

/** Save a Blob as a file through a temporary link. */
export function download(blob, filename) {
  const url = URL.createObjectURL(blob);
  const a = h('a', { href: url, download: filename, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/**
 * Re-render `host` with `render()` without losing keyboard focus: if focus was inside a row carrying
 * `rowAttr` (e.g. data-bin-row), the same control in the re-rendered row gets it back.
 */
export function keepFocus(host, rowAttr, render) {
  const active = document.activeElement;
  const row = active && host.contains(active) ? active.closest(`[${rowAttr}]`) : null;
  let key = null;
  let index = -1;
  if (row) {
    key = row.getAttribute(rowAttr);
    index = [...row.querySelectorAll('button, a[href], input, select')].indexOf(active);
  }
  render();
  if (key === null || index < 0) return;
  const again = [...host.querySelectorAll(`[${rowAttr}]`)].find((r) => r.getAttribute(rowAttr) === key);
  const target = again && again.querySelectorAll('button, a[href], input, select')[index];
  // A refresh must not scroll the page: the user may be looking elsewhere (e.g. at the map).
  if (target) target.focus({ preventScroll: true });
}
