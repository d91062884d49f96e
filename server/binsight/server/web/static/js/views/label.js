// Labelling: images sent by cameras, unsure ones first. Set the fill depth, save, next.
// Keys: 0-9 set 0..90%, F sets 100%, arrows nudge by 5%, Enter saves, S skips, U marks unusable.
import { api, query } from '../api.js';
import { flash, h, replace, table } from '../dom.js';
import { pct, shortDateTime } from '../format.js';

const QUEUE_SIZE = 50;

/** What a key does to the fill (percent), or null when it is not a fill key. */
export function keyToFill(key, current) {
  if (/^[0-9]$/.test(key)) return Number(key) * 10;
  if (key === 'f' || key === 'F') return 100;
  if (key === 'ArrowRight' || key === 'ArrowUp') return Math.min(100, current + 5);
  if (key === 'ArrowLeft' || key === 'ArrowDown') return Math.max(0, current - 5);
  return null;
}

export default {
  id: 'label',
  title: 'Labelling',
  ability: 'label',
  mount(container) {
    let queue = [];
    let index = 0;
    let saving = false;
    let alive = true;
    let imageUrl = null;
    let done = 0;

    const img = h('img', { id: 'l-image', alt: '', class: 'label-image' });
    const imgBox = h('div', { class: 'label-image-box' }, img);
    const meta = h('p', { id: 'l-meta', class: 'label-meta' });
    const slider = h('input', { id: 'l-fill', type: 'range', min: 0, max: 100, step: 5, value: 50,
      'aria-describedby': 'l-keys' });
    const out = h('output', { id: 'l-fill-out', for: 'l-fill', class: 'fill-out' }, '50%');
    const saveBtn = h('button', { type: 'button', id: 'l-save', class: 'btn btn-primary' }, 'Save (Enter)');
    const skipBtn = h('button', { type: 'button', id: 'l-skip', class: 'btn' }, 'Skip (S)');
    const unusableBtn = h('button', { type: 'button', id: 'l-unusable', class: 'btn btn-warn' }, 'Unusable (U)');
    const count = h('p', { id: 'l-count', class: 'summary', 'aria-live': 'polite' });
    const statsHost = h('div', { class: 'label-stats' });
    const work = h('div', { class: 'label-layout' },
      imgBox,
      h('div', { class: 'panel label-controls' },
        meta,
        h('label', { for: 'l-fill', class: 'big-label' }, 'How full is the container?'),
        h('div', { class: 'slider-row' }, h('span', { 'aria-hidden': 'true' }, 'empty'), slider, h('span', { 'aria-hidden': 'true' }, 'full')),
        out,
        h('div', { class: 'row buttons' }, saveBtn, skipBtn, unusableBtn),
        h('ul', { id: 'l-keys', class: 'keys' },
          h('li', {}, h('kbd', {}, '0'), '–', h('kbd', {}, '9'), ' set 0–90%, ', h('kbd', {}, 'F'), ' sets 100%'),
          h('li', {}, h('kbd', {}, '←'), h('kbd', {}, '→'), ' nudge by 5%'),
          h('li', {}, h('kbd', {}, 'Enter'), ' save · ', h('kbd', {}, 'S'), ' skip · ', h('kbd', {}, 'U'), ' unusable'))));
    const empty = h('p', { class: 'panel empty-queue', hidden: true }, 'No images are waiting for a label. Cameras send more as they capture.');

    replace(container,
      h('div', { class: 'page-head' }, h('h1', {}, 'Labelling'), count),
      work, empty,
      h('h2', {}, 'Labels so far'), statsHost);

    function setFill(p) {
      slider.value = String(p);
      out.textContent = `${p}%`;
    }
    slider.addEventListener('input', () => { out.textContent = `${slider.value}%`; });

    async function loadStats() {
      try {
        const st = await api('/api/labels/stats');
        const per = (obj, label) => table([
          { label, value: ([k]) => k },
          { label: 'Labels', value: ([, n]) => String(n), className: 'num' },
        ], Object.entries(obj || {}).sort((a, b) => b[1] - a[1]), { empty: 'None yet.' });
        replace(statsHost,
          h('p', { id: 'l-total' }, `${st.total} labelled images (unusable ones not counted).`),
          h('div', { class: 'two-col' },
            h('section', {}, h('h3', {}, 'Per site'), per(st.per_site, 'Site')),
            h('section', {}, h('h3', {}, 'Per bin'), per(st.per_bin, 'Bin'))));
      } catch (err) {
        replace(statsHost, h('p', { class: 'error' }, `Could not load label counts: ${err.message}`));
      }
    }

    async function showCurrent() {
      const item = queue[index];
      work.hidden = !item;
      empty.hidden = Boolean(item);
      count.textContent = item
        ? `Image ${index + 1} of ${queue.length} in the queue · ${done} labelled this session`
        : `${done} labelled this session`;
      if (!item) return;
      replace(meta,
        h('strong', {}, item.bin_id), ` · ${shortDateTime(item.ts)} · `,
        item.reason ? h('span', { class: 'reason' }, `sent because: ${item.reason}`) : 'sampled',
        item.predicted_fill !== null && item.predicted_fill !== undefined ? ` · model says ${pct(item.predicted_fill)}` : '');
      setFill(item.predicted_fill !== null && item.predicted_fill !== undefined ? Math.round(item.predicted_fill * 20) * 5 : 50);
      img.alt = `Camera image from ${item.bin_id}, ${shortDateTime(item.ts)}`;
      img.dataset.imageId = item.image_id;
      try {
        const blob = await api(`/api/images/${encodeURIComponent(item.image_id)}`, { blob: true });
        if (!alive || queue[index] !== item) return;
        if (imageUrl) URL.revokeObjectURL(imageUrl);
        imageUrl = URL.createObjectURL(blob);
        img.src = imageUrl;
      } catch (err) {
        img.removeAttribute('src');
        flash(`Could not load image ${item.image_id}: ${err.message}`, 'error');
      }
    }

    async function loadQueue() {
      try {
        queue = await api(`/api/labels/queue${query({ limit: QUEUE_SIZE })}`);
      } catch (err) {
        count.textContent = `Could not load the queue: ${err.message}`;
        return;
      }
      index = 0;
      if (alive) showCurrent();
    }

    async function act(kind) {
      const item = queue[index];
      if (!item || saving) return;
      saving = true;
      const id = encodeURIComponent(item.image_id);
      try {
        if (kind === 'save') await api(`/api/images/${id}/label`, { method: 'POST', body: { fill: Number(slider.value) / 100 } });
        else if (kind === 'unusable') await api(`/api/images/${id}/label`, { method: 'POST', body: { fill: null, unusable: true } });
        else await api(`/api/images/${id}/skip`, { method: 'POST' });
      } catch (err) {
        flash(`Not saved: ${err.message}`, 'error');
        saving = false;
        return;
      }
      saving = false;
      if (kind !== 'skip') {
        done += 1;
        flash(kind === 'save' ? `Saved ${item.bin_id}: ${slider.value}% full.` : `Marked ${item.bin_id} unusable.`);
        loadStats();
      }
      index += 1;
      if (index >= queue.length) await loadQueue();
      else showCurrent();
    }

    saveBtn.addEventListener('click', () => act('save'));
    skipBtn.addEventListener('click', () => act('skip'));
    unusableBtn.addEventListener('click', () => act('unusable'));

    function onKey(e) {
      if (e.ctrlKey || e.metaKey || e.altKey || work.hidden) return;
      const t = e.target;
      const typing = t instanceof HTMLElement && (t.isContentEditable || (t.tagName === 'INPUT' && t.type !== 'range') || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT');
      if (typing) return;
      if (e.key === 'Enter') {
        // A focused button, link or disclosure handles Enter itself (a link in the menu must still navigate).
        if (t instanceof HTMLElement && t.closest('button, a[href], summary')) return;
        e.preventDefault();
        act('save');
        return;
      }
      if (e.key === 's' || e.key === 'S') { e.preventDefault(); act('skip'); return; }
      if (e.key === 'u' || e.key === 'U') { e.preventDefault(); act('unusable'); return; }
      const next = keyToFill(e.key, Number(slider.value));
      if (next !== null) {
        e.preventDefault();
        setFill(next);
      }
    }
    document.addEventListener('keydown', onKey);

    loadQueue();
    loadStats();
    return () => {
      alive = false;
      document.removeEventListener('keydown', onKey);
      if (imageUrl) URL.revokeObjectURL(imageUrl);
    };
  },
};
