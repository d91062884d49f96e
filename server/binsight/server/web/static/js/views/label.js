// Labelling: images sent by cameras, unsure ones first. Set the fill depth, save, next.
// Keys: 0-9 set 0..90%, F sets 100%, arrows nudge by 5%, Enter saves, S skips, U marks unusable,
// B goes back to the previous image (saving it again replaces its label), Z zooms the image.
// Classes (overflowing, contaminated...): a button each beside the fill, Shift+1..9 toggles one.
import { api, query } from '../api.js';
import { flash, h, replace, table } from '../dom.js';
import { pct, plural, shortDateTime } from '../format.js';

const QUEUE_SIZE = 50;
const ZOOMS = [1, 2, 3];

/** What a key does to the fill (percent), or null when it is not a fill key. */
export function keyToFill(key, current) {
  if (/^[0-9]$/.test(key)) return Number(key) * 10;
  if (key === 'f' || key === 'F') return 100;
  if (key === 'ArrowRight' || key === 'ArrowUp') return Math.min(100, current + 5);
  if (key === 'ArrowLeft' || key === 'ArrowDown') return Math.max(0, current - 5);
  return null;
}

/** The class index (0-based) Shift+1..9 toggles, or null: by key code, so any keyboard layout works. */
export function keyToClass(e, count) {
  if (!e.shiftKey) return null;
  const m = /^Digit([1-9])$/.exec(e.code || '');
  const k = m ? Number(m[1]) - 1 : -1;
  return k >= 0 && k < count ? k : null;
}

/** "12 of 212 done" style progress: this session's labels against them plus what still waits. */
export function progressText(done, waiting) {
  return `${plural(waiting, 'image')} waiting · ${done} labelled this session`;
}

/** An image box that zooms (Z, the button, the wheel) and pans by dragging while zoomed. */
function zoomable(img) {
  let zoom = 1;
  let at = [0, 0];
  let drag = null;
  const box = h('div', { class: 'label-image-box' }, img);
  const apply = () => {
    const limit = (v, size) => Math.max(-(size * (zoom - 1)) / 2, Math.min((size * (zoom - 1)) / 2, v));
    at = [limit(at[0], box.clientWidth), limit(at[1], box.clientHeight)];
    img.style.transform = zoom === 1 ? '' : `translate(${at[0]}px, ${at[1]}px) scale(${zoom})`;
    box.classList.toggle('zoomed', zoom > 1);
    box.dataset.zoom = String(zoom);
    button.textContent = zoom === 1 ? 'Zoom (Z)' : `${zoom}× (Z)`;
  };
  const set = (z) => { zoom = z; if (z === 1) at = [0, 0]; apply(); };
  const next = () => set(ZOOMS[(ZOOMS.indexOf(zoom) + 1) % ZOOMS.length]);
  const button = h('button', { type: 'button', id: 'l-zoom', class: 'btn', onclick: next }, 'Zoom (Z)');
  box.addEventListener('wheel', (e) => {
    e.preventDefault();
    const i = ZOOMS.indexOf(zoom) + (e.deltaY < 0 ? 1 : -1);
    set(ZOOMS[Math.max(0, Math.min(ZOOMS.length - 1, i))]);
  }, { passive: false });
  box.addEventListener('pointerdown', (e) => {
    if (zoom === 1) return;
    drag = [e.clientX, e.clientY];
    box.setPointerCapture(e.pointerId);
  });
  box.addEventListener('pointermove', (e) => {
    if (!drag) return;
    at = [at[0] + e.clientX - drag[0], at[1] + e.clientY - drag[1]];
    drag = [e.clientX, e.clientY];
    apply();
  });
  const stop = () => { drag = null; };
  box.addEventListener('pointerup', stop);
  box.addEventListener('pointercancel', stop);
  return { box, button, next, reset: () => set(1) };
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
    let waiting = null;
    // What this session did, oldest first ({item, kind, fill}); `back` steps into it from the queue.
    const history = [];
    let back = 0;
    const refUrls = [];
    const refCache = new Map();

    const img = h('img', { id: 'l-image', alt: '', class: 'label-image' });
    const zoom = zoomable(img);
    const imgBox = zoom.box;
    const progress = h('progress', { id: 'l-progress', max: 1, value: 0, 'aria-label': 'Labelling progress' });
    const prevBtn = h('button', { type: 'button', id: 'l-prev', class: 'btn', disabled: true }, '← Previous (B)');
    const revisit = h('p', { id: 'l-revisit', class: 'revisit', hidden: true });
    const refsHost = h('div', { id: 'l-refs', class: 'label-refs' });
    const meta = h('p', { id: 'l-meta', class: 'label-meta' });
    // A second opinion: someone else labelled this image; the two labels measure agreement and bias.
    const second = h('p', { id: 'l-second', class: 'second-opinion', hidden: true },
      h('strong', {}, 'Second opinion: '),
      'someone else labelled this image. Label it as you see it; their label and the model\'s guess are hidden.');
    const slider = h('input', { id: 'l-fill', type: 'range', min: 0, max: 100, step: 5, value: 50,
      'aria-describedby': 'l-keys' });
    const out = h('output', { id: 'l-fill-out', for: 'l-fill', class: 'fill-out' }, '50%');
    // The class beside the fill (optional): one toggle button per class, from GET /api/labels/classes.
    let classes = [];
    let chosen = null;
    const classRow = h('div', { id: 'l-classes', class: 'row buttons class-buttons', role: 'group', 'aria-label': 'Class (optional)' });
    const classHelp = h('li', { id: 'l-class-keys', hidden: true });
    const saveBtn = h('button', { type: 'button', id: 'l-save', class: 'btn btn-primary' }, 'Save (Enter)');
    const skipBtn = h('button', { type: 'button', id: 'l-skip', class: 'btn' }, 'Skip (S)');
    const unusableBtn = h('button', { type: 'button', id: 'l-unusable', class: 'btn btn-warn' }, 'Unusable (U)');
    const count = h('p', { id: 'l-count', class: 'summary', 'aria-live': 'polite' });
    const statsHost = h('div', { class: 'label-stats' });
    const work = h('div', { class: 'label-layout' },
      imgBox,
      h('div', { class: 'panel label-controls' },
        meta,
        second,
        revisit,
        h('label', { for: 'l-fill', class: 'big-label' }, 'How full is the container?'),
        h('div', { class: 'slider-row' }, h('span', { 'aria-hidden': 'true' }, 'empty'), slider, h('span', { 'aria-hidden': 'true' }, 'full')),
        out,
        h('p', { class: 'big-label class-label', id: 'l-class-title' }, 'Anything else? (optional)'),
        classRow,
        h('div', { class: 'row buttons' }, saveBtn, skipBtn, unusableBtn),
        h('div', { class: 'row buttons' }, prevBtn, zoom.button),
        h('ul', { id: 'l-keys', class: 'keys' },
          h('li', {}, h('kbd', {}, '0'), '–', h('kbd', {}, '9'), ' set 0–90%, ', h('kbd', {}, 'F'), ' sets 100%'),
          h('li', {}, h('kbd', {}, '←'), h('kbd', {}, '→'), ' nudge by 5%'),
          h('li', {}, h('kbd', {}, 'Enter'), ' save · ', h('kbd', {}, 'S'), ' skip · ', h('kbd', {}, 'U'), ' unusable'),
          h('li', {}, h('kbd', {}, 'B'), ' previous image · ', h('kbd', {}, 'Z'), ' zoom'),
          classHelp),
        refsHost));
    const empty = h('p', { class: 'panel empty-queue', hidden: true }, 'No images are waiting for a label. Cameras send more as they capture.');

    replace(container,
      h('div', { class: 'page-head' }, h('h1', {}, 'Labelling'), count, progress),
      work, empty,
      h('h2', {}, 'Labels so far'), statsHost);

    function setFill(p) {
      slider.value = String(p);
      out.textContent = `${p}%`;
    }
    slider.addEventListener('input', () => { out.textContent = `${slider.value}%`; });

    function setClass(name) {
      chosen = name;
      for (const b of classRow.children) b.setAttribute('aria-pressed', String(b.dataset.class === chosen));
    }
    function toggleClass(k) { setClass(chosen === classes[k] ? null : classes[k]); }
    async function loadClasses() {
      try {
        classes = (await api('/api/labels/classes')).classes.slice(0, 9);
      } catch {
        classes = [];
      }
      if (!alive) return;
      replace(classRow, classes.map((c, k) => h('button', {
        type: 'button', class: 'btn btn-class', 'data-class': c, 'aria-pressed': 'false',
        onclick: () => toggleClass(k),
      }, c, h('kbd', { 'aria-hidden': 'true' }, `⇧${k + 1}`))));
      classHelp.hidden = !classes.length;
      replace(classHelp, h('kbd', {}, 'Shift'), '+', h('kbd', {}, '1'), '–', h('kbd', {}, String(classes.length)), ' class (again: none)');
      setClass(chosen);
    }

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

    /** The image on screen: one from this session's history when the user went back, else the queue's. */
    function current() {
      return back ? history[history.length - back] : (queue[index] ? { item: queue[index] } : null);
    }

    function renderCount() {
      const total = waiting === null ? null : done + waiting;
      count.textContent = waiting === null ? `${done} labelled this session` : progressText(done, waiting);
      progress.hidden = !total;
      if (total) { progress.max = total; progress.value = done; }
      prevBtn.disabled = back >= history.length;
    }

    async function loadWaiting() {
      try {
        waiting = (await api('/api/labels/queue/size')).waiting;
      } catch {
        waiting = null;
      }
      if (alive) renderCount();
    }

    async function blobUrl(imageId) {
      const blob = await api(`/api/images/${encodeURIComponent(imageId)}`, { blob: true });
      return URL.createObjectURL(blob);
    }

    /** The site's labelled examples nearest empty and nearest full, beside the image to label. */
    async function showReferences(item) {
      let refs = refCache.get(item.bin_id);
      try {
        if (!refs) {
          refs = await api(`/api/labels/references${query({ bin_id: item.bin_id })}`);
          refCache.set(item.bin_id, refs);
        }
      } catch (err) {
        replace(refsHost, h('p', { class: 'hint' }, `No reference images: ${err.message}`));
        return;
      }
      const only = refs.empty && !refs.full;
      const shown = [['empty', only ? 'The one labelled example' : 'Nearest empty', refs.empty], ['full', 'Nearest full', refs.full]]
        .filter(([, , ref]) => ref && ref.image_id !== item.image_id);
      if (!shown.length) {
        replace(refsHost, h('p', { class: 'hint' }, `No labelled images of ${refs.site ? `site ${refs.site}` : item.bin_id} to compare with yet.`));
        return;
      }
      const figures = await Promise.all(shown.map(async ([kind, title, ref]) => {
        const url = await blobUrl(ref.image_id).catch(() => null);
        if (url) refUrls.push(url);
        return h('figure', { class: 'label-ref', 'data-ref': kind, 'data-image-id': ref.image_id },
          url ? h('img', { src: url, alt: `${title}: ${ref.bin_id} labelled ${pct(ref.fill)}` }) : null,
          h('figcaption', {}, `${title}: ${pct(ref.fill)} (${ref.bin_id})`));
      }));
      if (!alive || current()?.item !== item) return;
      replace(refsHost, h('h3', {}, `Labelled examples of ${refs.site ? `site ${refs.site}` : item.bin_id}`),
        h('div', { class: 'label-ref-row' }, figures));
    }

    async function showCurrent() {
      const cur = current();
      const item = cur && cur.item;
      work.hidden = !item;
      empty.hidden = Boolean(item);
      renderCount();
      if (!item) return;
      zoom.reset();
      revisit.hidden = !back;
      if (back) {
        revisit.textContent = cur.kind === 'skip' ? 'You skipped this image: label it now, or press S to go on.'
          : `You ${cur.kind === 'unusable' ? 'marked this image unusable' : `labelled this image ${cur.fill}%`}: saving again replaces it; S goes on without changing it.`;
      }
      skipBtn.textContent = back ? 'Keep, next (S)' : 'Skip (S)';
      // A second opinion starts at 50% with no model guess shown: an anchor would make the labels agree.
      const blind = Boolean(item.second_opinion);
      second.hidden = !blind;
      work.classList.toggle('is-second-opinion', blind);
      const predicted = !blind && item.predicted_fill !== null && item.predicted_fill !== undefined;
      replace(meta,
        h('strong', {}, item.bin_id), ` · ${shortDateTime(item.ts)} · `,
        blind ? h('span', { class: 'reason' }, 'sent for a second label')
          : item.reason ? h('span', { class: 'reason' }, `sent because: ${item.reason}`) : 'sampled',
        predicted ? ` · model says ${pct(item.predicted_fill)}` : '');
      const guess = predicted ? Math.round(item.predicted_fill * 20) * 5 : 50;
      setFill(back && cur.kind === 'save' ? cur.fill : guess);
      setClass(back && cur.kind === 'save' ? cur.label || null : null);
      img.alt = `Camera image from ${item.bin_id}, ${shortDateTime(item.ts)}`;
      img.dataset.imageId = item.image_id;
      showReferences(item);
      try {
        const url = await blobUrl(item.image_id);
        if (!alive || current()?.item !== item) { URL.revokeObjectURL(url); return; }
        if (imageUrl) URL.revokeObjectURL(imageUrl);
        imageUrl = url;
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
      loadWaiting();
      if (alive) showCurrent();
    }

    function goBack() {
      if (back >= history.length || saving) return;
      back += 1;
      showCurrent();
    }

    async function act(kind) {
      const cur = current();
      if (!cur || saving) return;
      const { item } = cur;
      if (back && kind === 'skip') {
        // Going on from a revisited image leaves its label as it was.
        back -= 1;
        showCurrent();
        return;
      }
      saving = true;
      const id = encodeURIComponent(item.image_id);
      const fill = Number(slider.value);
      const label = chosen;
      try {
        if (kind === 'save') await api(`/api/images/${id}/label`, { method: 'POST', body: label ? { fill: fill / 100, label } : { fill: fill / 100 } });
        else if (kind === 'unusable') await api(`/api/images/${id}/label`, { method: 'POST', body: { fill: null, unusable: true } });
        else await api(`/api/images/${id}/skip`, { method: 'POST' });
      } catch (err) {
        flash(`Not saved: ${err.message}`, 'error');
        saving = false;
        return;
      }
      saving = false;
      const again = Boolean(back);
      if (kind !== 'skip') {
        if (!again || cur.kind === 'skip') done += 1;
        flash(kind === 'save' ? `Saved ${item.bin_id}: ${fill}% full${label ? `, ${label}` : ''}.` : `Marked ${item.bin_id} unusable.`);
        loadStats();
        refCache.delete(item.bin_id);
      }
      if (again) {
        Object.assign(cur, { kind, fill, label });
        back -= 1;
        showCurrent();
        return;
      }
      history.push({ item, kind, fill, label });
      if (waiting !== null) waiting = Math.max(0, waiting - 1);
      index += 1;
      if (index >= queue.length) await loadQueue();
      else showCurrent();
    }

    saveBtn.addEventListener('click', () => act('save'));
    skipBtn.addEventListener('click', () => act('skip'));
    unusableBtn.addEventListener('click', () => act('unusable'));
    prevBtn.addEventListener('click', goBack);

    function onKey(e) {
      if (e.ctrlKey || e.metaKey || e.altKey || work.hidden) return;
      const t = e.target;
      const typing = t instanceof HTMLElement && (t.isContentEditable || (t.tagName === 'INPUT' && t.type !== 'range') || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT');
      if (typing) return;
      const cls = keyToClass(e, classes.length);
      if (cls !== null) { e.preventDefault(); toggleClass(cls); return; }
      if (e.key === 'Enter') {
        // A focused button, link or disclosure handles Enter itself (a link in the menu must still navigate).
        if (t instanceof HTMLElement && t.closest('button, a[href], summary')) return;
        e.preventDefault();
        act('save');
        return;
      }
      if (e.key === 's' || e.key === 'S') { e.preventDefault(); act('skip'); return; }
      if (e.key === 'u' || e.key === 'U') { e.preventDefault(); act('unusable'); return; }
      if (e.key === 'b' || e.key === 'B') { e.preventDefault(); goBack(); return; }
      if (e.key === 'z' || e.key === 'Z') { e.preventDefault(); zoom.next(); return; }
      const next = keyToFill(e.key, Number(slider.value));
      if (next !== null) {
        e.preventDefault();
        setFill(next);
      }
    }
    document.addEventListener('keydown', onKey);

    loadClasses();
    loadQueue();
    loadStats();
    return () => {
      alive = false;
      document.removeEventListener('keydown', onKey);
      if (imageUrl) URL.revokeObjectURL(imageUrl);
      for (const url of refUrls) URL.revokeObjectURL(url);
    };
  },
};
