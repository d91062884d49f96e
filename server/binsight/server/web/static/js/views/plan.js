// Route plan: ask the server for a plan, follow the solver, draw the routes, list a manifest per truck.
import { ApiError, api } from '../api.js';
import { routeColor } from '../colors.js';
import { download, flash, h, replace, table } from '../dom.js';
import { clock, dateTime, km, litres, minutes, pct, shortDateTime } from '../format.js';
import { MapView } from '../mapview.js';
import { binDetails } from './bininfo.js';
import { longDay } from './manifest.js';
import { tileSettings } from './map.js';

const POLL_MS = 1000;

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
}

/** The day a plan is for: the server says (service_day); a plan's request date otherwise. */
function planDay(p) {
  return p.service_day || (p.request && p.request.date) || (p.result && p.result.name) || null;
}

const KIND_LABEL = { depot: 'Depot', disposal: 'Disposal', break: 'Break', bin: 'Bin' };
/** "1,300 L", "35 min", "1 h 12 min": a breach's amount as the server's sentence words it. */
function amount(over, unit) {
  if (unit !== 'min' || over < 60) return `${over.toLocaleString()} ${unit}`;
  return `${Math.floor(over / 60)} h ${String(over % 60).padStart(2, '0')} min`;
}
// "1,300 L over capacity", "35 min past the shift end": the Move anyway button states the cost.
const LIMIT_WORDS = {
  capacity: 'over capacity', shift_end: 'past the shift end', max_duration: 'over the longest day', window: 'late for its window',
};

/** Manifest rows for one route: bin stops are numbered 1..n; other stops are named by kind. */
export function manifestRows(route) {
  let n = 0;
  return route.stops.map((stop) => {
    if (stop.kind === 'bin') n += 1;
    return { ...stop, number: stop.kind === 'bin' ? n : null };
  });
}

export default {
  id: 'plan',
  title: 'Route plan',
  ability: 'plan',
  mount(container, ctx) {
    let plan = null;
    let pollTimer = null;
    let tickTimer = null;
    let alive = true;
    let onlyTruck = ctx.params[0] || '';
    let allBins = [];
    let binById = new Map();
    let requested = false;

    // Left empty, each of these is the server's own setting: the next service day, forecast.threshold
    // and fleet.plan_time_limit_s from server.toml.
    const date = h('input', { id: 'p-date', type: 'date', min: today(), 'aria-describedby': 'p-defaults' });
    const limit = h('input', { id: 'p-limit', type: 'number', min: 1, max: 600, inputmode: 'numeric', placeholder: 'default', 'aria-describedby': 'p-defaults' });
    const threshold = h('input', { id: 'p-threshold', type: 'number', min: 5, max: 100, step: 5, inputmode: 'numeric', placeholder: 'default', 'aria-describedby': 'p-defaults' });
    // The server plans with its configured fleet (server.toml [[fleet.trucks]]): all of it, the first N,
    // or the trucks picked here by id.
    const fleetMode = h('select', { id: 'p-fleet' },
      h('option', { value: 'all' }, 'All configured trucks'),
      h('option', { value: 'count' }, 'The first N trucks'),
      h('option', { value: 'ids' }, 'These trucks'));
    const truckCount = h('input', { id: 'p-count', type: 'number', min: 1, step: 1, value: 1, inputmode: 'numeric' });
    const truckIdsInput = h('input', { id: 'p-ids', type: 'text', spellcheck: 'false', placeholder: 'truck-1, truck-2', 'aria-describedby': 'p-ids-hint' });
    const knownTrucks = h('p', { id: 'p-ids-hint', class: 'hint' });
    const countField = h('div', { class: 'field', hidden: true }, h('label', { for: 'p-count' }, 'Number of trucks'), truckCount);
    const idsField = h('div', { class: 'field', hidden: true }, h('label', { for: 'p-ids' }, 'Truck ids (comma-separated)'), truckIdsInput, knownTrucks);
    fleetMode.addEventListener('change', () => {
      countField.hidden = fleetMode.value !== 'count';
      idsField.hidden = fleetMode.value !== 'ids';
    });
    function rememberTrucks(p) {
      const ids = new Set(knownTrucks.dataset.ids ? knownTrucks.dataset.ids.split(',') : []);
      for (const r of (p.result && p.result.routes) || []) ids.add(r.truck);
      if (p.request && Array.isArray(p.request.trucks)) p.request.trucks.forEach((x) => ids.add(String(x)));
      const list = [...ids].filter(Boolean).sort();
      knownTrucks.dataset.ids = list.join(',');
      knownTrucks.textContent = list.length ? `Used in plans so far: ${list.join(', ')}` : '';
      if (!truckIdsInput.value && list.length) truckIdsInput.value = list.join(', ');
    }
    const planBtn = h('button', { id: 'plan-btn', type: 'submit', class: 'btn btn-primary' }, 'Plan routes');
    const progress = h('progress', { id: 'plan-progress', max: 100, value: 0, hidden: true, 'aria-label': 'Solver progress' });
    const status = h('p', { id: 'plan-status', class: 'status', role: 'status', 'aria-live': 'polite' });
    const form = h('form', { class: 'plan-form no-print', 'aria-label': 'Plan routes' },
      h('div', { class: 'row' },
        h('div', { class: 'field' }, h('label', { for: 'p-date' }, 'Service date'), date),
        h('div', { class: 'field' }, h('label', { for: 'p-threshold' }, 'Collect bins forecast above (%)'), threshold),
        h('div', { class: 'field' }, h('label', { for: 'p-limit' }, 'Solver time limit (s)'), limit)),
      h('p', { id: 'p-defaults', class: 'hint' }, 'Empty fields use the server\'s settings: the next service day, its fill threshold and time limit.'),
      h('div', { class: 'row' },
        h('div', { class: 'field' }, h('label', { for: 'p-fleet' }, 'Fleet'), fleetMode), countField, idsField),
      h('div', { class: 'row' }, planBtn, progress, status));

    const mapHost = h('div', { class: 'map-host map-host-plan' });
    const summary = h('div', { class: 'plan-summary' });
    const tools = h('div', { class: 'plan-tools no-print', hidden: true });
    const manifests = h('div', { class: 'manifests' });
    const why = h('div', { class: 'why' });
    replace(container,
      h('div', { class: 'page-head' }, h('h1', {}, 'Route plan')),
      // A driver's link (#/plan/<truck>) opens on the manifest; the form stays one tap away.
      h('details', { class: 'plan-form-box no-print', open: !onlyTruck }, h('summary', {}, 'Plan new routes'), form),
      h('section', { id: 'plan-result', 'aria-label': 'Planned routes', hidden: true },
        summary, tools, mapHost, manifests, why));
    const result = container.querySelector('#plan-result');
    // Earlier plans (GET /api/plans), to look back at what was planned and why.
    const historySel = h('select', { id: 'p-history' });
    async function showPlan(id) {
      try {
        const p = await api(`/api/plans/${encodeURIComponent(id)}`);
        requested = true;
        stopPolling();
        show(p);
      } catch (err) {
        flash(`Could not load that plan: ${err.message}`, 'error');
      }
    }
    historySel.addEventListener('change', () => showPlan(historySel.value));
    // The plan drivers follow for the shown plan's day (GET /api/manifests?date=): null when none is
    // published. Re-planning every minute pushes it out of the last 20 plans, so it is fetched apart.
    let publishedForDay = null;
    async function loadHistory() {
      let plans;
      const day = plan ? planDay(plan) : null;
      try {
        plans = await api('/api/plans?limit=20');
      } catch {
        return;
      }
      const fill = () => {
        const current = plan ? plan.id : '';
        replace(historySel, plans.map((p) => h('option', { value: p.id, selected: p.id === current },
          `${shortDateTime(p.created_at)} · for ${planDay(p)} · ${p.status}${p.published_at ? ' · PUBLISHED' : ''}`)));
      };
      fill();
      let published = null;
      if (day) {
        try {
          published = await api(`/api/manifests?date=${encodeURIComponent(day)}`);
        } catch { /* 404: nothing published for that day */ }
      }
      if (published && !plans.some((p) => p.id === published.plan_id)) {
        try {
          plans.push(await api(`/api/plans/${encodeURIComponent(published.plan_id)}`));
          fill();
        } catch { /* withdrawn meanwhile */ }
      }
      publishedForDay = published;
      fillPublishBar();
    }
    // The tooltip of a bin on the plan map says why the planner took or skipped it.
    const whyOf = new Map();
    // The bin's details are live; the reason is what the planner saw (its forecast fill), so say when.
    const describe = (bin) => {
      const w = whyOf.get(bin.id);
      return [binDetails(bin), w ? h('p', { class: `plan-why plan-why-${w.kind}` },
        h('span', { class: 'plan-why-when' }, `When planned (${plan ? shortDateTime(plan.created_at) : ''}, forecast fill): `),
        `${w.kind === 'taken' ? 'Taken' : 'Skipped'}: ${w.reason || 'no reason given'}`) : null];
    };
    const map = new MapView(mapHost, { label: 'Map of planned routes', describe });
    const st = tileSettings();
    if (st.on) map.setTiles(st.url);

    function stopPolling() {
      clearTimeout(pollTimer);
      clearInterval(tickTimer);
      pollTimer = null;
      tickTimer = null;
    }

    function busy(on) {
      planBtn.disabled = on;
      progress.hidden = !on;
    }

    async function exportAs(ext, mime) {
      try {
        const blob = await api(`/api/plans/${encodeURIComponent(plan.id)}/export.${ext}`, { blob: true });
        download(new Blob([blob], { type: mime }), `binsight-plan-${plan.id}.${ext}`);
      } catch (err) {
        flash(`Download failed: ${err.message}`, 'error');
      }
    }

    // Publishing locks the plan for drivers: their manifests follow it, not the latest plan.
    // On a published plan, what the drivers reported per stop (done, blocked, overflowing).
    async function showReports(p) {
      let reports;
      try {
        reports = await api(`/api/stop-reports?plan_id=${encodeURIComponent(p.id)}`);
      } catch {
        return;
      }
      if (!plan || plan.id !== p.id) return;
      for (const rep of reports) {
        const row = manifests.querySelector(`.manifest[data-truck="${CSS.escape(rep.truck)}"] tr[data-stop="${CSS.escape(rep.bin_id)}"]`);
        if (!row) continue;
        row.dataset.report = rep.status;
        row.querySelector('.plan-report')?.remove();
        row.children[1].append(h('span', { class: `plan-report plan-report-${rep.status}` },
          ` · ${rep.status} ${shortDateTime(rep.ts)} by ${rep.by}${rep.note ? `: ${rep.note}` : ''}`));
      }
    }

    async function setPublished(on) {
      try {
        const p = await api(`/api/plans/${encodeURIComponent(plan.id)}/${on ? 'publish' : 'unpublish'}`, { method: 'POST' });
        plan = { ...plan, ...p };
        flash(on ? `Published: drivers now see this plan for ${planDay(p)}.` : 'Withdrawn: drivers see no plan for that day.');
        renderPlan();
        loadHistory();
      } catch (err) {
        flash(`${on ? 'Publishing' : 'Withdrawing'} failed: ${err.message}`, 'error');
      }
    }

    // Move one bin to another truck: the server re-times the routes, adds a trip to the tip when the
    // truck would overfill, and refuses a move that still breaks a limit, saying which and by how much.
    // The dispatcher may then save it anyway (overtime agreed, a second tip run by phone...).
    async function moveBin(binId, truck, allowViolations = false) {
      const out = container.querySelector('#p-move-result');
      try {
        const p = await api(`/api/plans/${encodeURIComponent(plan.id)}/move`,
          { method: 'POST', body: { bin_id: binId, truck, allow_violations: allowViolations } });
        requested = true;
        show(p);
        const route = (p.result.routes || []).find((r) => r.truck === truck);
        const back = route ? route.stops[route.stops.length - 1].arrive : '';
        const tip = p.result.edit && p.result.edit.tip_trip_added ? ' with one more trip to the tip' : '';
        const broken = (p.result.breaches || []).length ? `, breaking ${p.result.breaches.length} limit${p.result.breaches.length === 1 ? '' : 's'} (listed above)` : '';
        flash(`Moved ${binId} to ${truck}${tip}${back ? `, back at ${back}` : ''}${broken}: saved as a new plan.`);
      } catch (err) {
        const breaches = err instanceof ApiError && err.status === 409 && err.body && Array.isArray(err.body.breaches)
          ? err.body.breaches : [];
        out.className = 'status error';
        if (!breaches.length) {
          replace(out, `Not moved: ${err.message}`);
          return;
        }
        const over = breaches.filter((b) => b.over).map((b) => `${amount(b.over, b.unit)} ${LIMIT_WORDS[b.limit] || b.limit}`);
        replace(out,
          h('strong', {}, `Not moved: ${binId} on ${truck} would break ${breaches.length === 1 ? 'a limit' : `${breaches.length} limits`}:`),
          h('ul', { id: 'p-move-breaches' }, breaches.map((b) => h('li', { 'data-limit': b.limit }, b.text))),
          h('button', { type: 'button', class: 'btn btn-warn', id: 'p-move-anyway', onclick: () => moveBin(binId, truck, true) },
            `Move anyway${over.length ? ` (${over.join(', ')})` : ''}`));
      }
    }

    function moveForm(routes) {
      if (!ctx.can('plan') || plan.published_at) return null;
      const res = plan.result;
      const ids = [...(res.included || []), ...(res.skipped || [])].map((x) => x.id).sort();
      const trucks = [...new Set([...routes.map((r) => r.truck), ...(plan.idle_trucks || [])])];
      const binIn = h('input', { id: 'p-move-bin', list: 'p-move-bins', spellcheck: 'false', autocomplete: 'off' });
      const truckIn = h('select', { id: 'p-move-truck' }, trucks.map((t) => h('option', { value: t }, t)));
      return h('form', { class: 'plan-move no-print', 'aria-label': 'Move a bin to another truck',
        onsubmit: (e) => { e.preventDefault(); if (binIn.value.trim()) moveBin(binIn.value.trim(), truckIn.value); } },
      h('datalist', { id: 'p-move-bins' }, ids.map((x) => h('option', { value: x },
        [binById.get(x)?.name, binById.get(x)?.address].filter(Boolean).join(' · ')))),
      h('div', { class: 'field' }, h('label', { for: 'p-move-bin' }, 'Move bin'), binIn),
      h('div', { class: 'field' }, h('label', { for: 'p-move-truck' }, 'to truck'), truckIn),
      h('button', { type: 'submit', class: 'btn', id: 'p-move-btn' }, 'Move and re-time'),
      h('p', { id: 'p-move-result', class: 'status', role: 'status' }));
    }

    const publishHost = h('div', { class: 'plan-publish no-print' });
    function publishBar() {
      if (!ctx.can('plan')) return null;
      fillPublishBar();
      return publishHost;
    }
    function fillPublishBar() {
      if (!plan || !plan.result) return;
      if (plan.published_at) {
        replace(publishHost,
          h('span', { id: 'plan-published', class: 'plan-published' },
            `Published for drivers ${dateTime(plan.published_at)} by ${plan.published_by || '?'}: locked`),
          h('button', { type: 'button', class: 'btn', id: 'plan-unpublish', onclick: () => setPublished(false) }, 'Withdraw'));
        return;
      }
      // Another plan of the same day may be the one drivers follow: say which, one click away.
      const other = publishedForDay && publishedForDay.service_day === planDay(plan) && publishedForDay.plan_id !== plan.id
        ? publishedForDay : null;
      replace(publishHost,
        h('span', { class: 'plan-unpublished', id: 'plan-unpublished' }, other
          ? `Not published: drivers follow the plan published ${dateTime(other.published_at)} by ${other.published_by || '?'}. `
          : 'Not published: drivers do not see this plan.'),
        other ? h('button', { type: 'button', class: 'btn', id: 'plan-show-published', onclick: () => showPlan(other.plan_id) }, 'Show the published plan') : null,
        h('button', { type: 'button', class: 'btn btn-primary', id: 'plan-publish', onclick: () => setPublished(true) },
          other ? `Publish this one instead for ${planDay(plan)}` : `Publish for ${planDay(plan)}`));
    }

    // A bin stop in the dispatcher's manifest: its id (what the driver reports), then name and address.
    function binCell(id) {
      const b = binById.get(id);
      const more = b ? [b.name && b.name !== id ? b.name : null, b.address].filter(Boolean).join(' · ') : '';
      return more ? [id, h('span', { class: 'stop-more' }, more)] : id;
    }

    function renderPlan() {
      binById = new Map(allBins.map((b) => [b.id, b]));
      const res = plan.result;
      result.hidden = false;
      whyOf.clear();
      for (const x of res.included || []) whyOf.set(x.id, { kind: 'taken', reason: x.reason });
      for (const x of res.skipped || []) whyOf.set(x.id, { kind: 'skipped', reason: x.reason });
      const idle = new Set(plan.idle_trucks || []);
      const routes = (res.routes || []).filter((r) => r.stops && r.stops.length && !idle.has(r.truck));
      const truckIds = routes.map((r) => r.truck);
      // A truck with no route in this plan is said so, never replaced by another truck's route.
      const missing = onlyTruck && !truckIds.includes(onlyTruck) ? onlyTruck : '';
      const shownRoutes = onlyTruck ? routes.filter((r) => r.truck === onlyTruck) : routes;
      result.classList.toggle('one-truck', Boolean(onlyTruck));
      const colorOf = (truck) => routeColor(truckIds.indexOf(truck));

      const totals = routes.reduce((a, r) => ({ km: a.km + (r.distance_km || 0), l: a.l + (r.collected_l || 0) }), { km: 0, l: 0 });
      replace(summary,
        h('h2', { id: 'plan-title' }, `Plan for ${longDay(planDay(plan))}`),
        h('p', {}, `${routes.length} route${routes.length === 1 ? '' : 's'} · ${(res.included || []).length} bins collected · `
          + `${(res.skipped || []).length} skipped · ${km(totals.km)} · ${litres(totals.l)} collected`
          + `${res.feasible === false ? ' · NOT FEASIBLE' : ''} · planned ${dateTime(plan.created_at)}`),
        (res.violations || []).length ? h('ul', { id: 'plan-violations', class: 'error' },
          // An edited plan names what it breaks in words (breaches); the solver's own list otherwise.
          ((res.breaches || []).length ? res.breaches.map((b) => b.text) : res.violations).map((v) => h('li', {}, v))) : null,
        idle.size ? h('p', { id: 'plan-idle', class: 'plan-idle' },
          `Idle: ${[...idle].join(', ')} (no stops in this plan)`) : null,
        publishBar(),
        moveForm(routes),
        missing ? h('p', { id: 'plan-truck-none', class: 'notice' },
          `${missing} has no route in this plan${idle.has(missing) ? ': it stays at the depot' : ` (its trucks: ${truckIds.join(', ') || 'none'})`}. `,
          h('a', { href: `#/manifest/${encodeURIComponent(missing)}` }, `${missing}'s manifest in the published plan`)) : null,
        h('ul', { class: 'legend route-legend' }, routes.map((r) => h('li', {},
          h('span', { class: 'swatch', style: { background: colorOf(r.truck) } }), r.truck)),
        h('li', {}, h('span', { class: 'swatch swatch-depot', 'aria-hidden': 'true' }, 'H'), 'depot'),
        h('li', {}, h('span', { class: 'swatch swatch-disposal', 'aria-hidden': 'true' }, 'T'), 'disposal (tip)')));

      const truckSel = h('select', { id: 'p-truck' }, h('option', { value: '' }, 'All trucks'),
        [...truckIds, ...(missing ? [missing] : [])].map((t) => h('option', { value: t, selected: t === onlyTruck }, t)));
      truckSel.addEventListener('change', () => {
        onlyTruck = truckSel.value;
        history.replaceState(null, '', `#/plan${onlyTruck ? `/${encodeURIComponent(onlyTruck)}` : ''}`);
        renderPlan();
      });
      replace(tools,
        h('div', { class: 'field' }, h('label', { for: 'p-history' }, 'Plan'), historySel),
        h('div', { class: 'field' }, h('label', { for: 'p-truck' }, 'Show'), truckSel),
        h('button', { type: 'button', class: 'btn', onclick: () => window.print() }, 'Print manifests'),
        h('button', { type: 'button', class: 'btn', onclick: () => exportAs('csv', 'text/csv') }, 'CSV'),
        h('button', { type: 'button', class: 'btn', onclick: () => exportAs('geojson', 'application/geo+json') }, 'GeoJSON'),
        h('button', { type: 'button', class: 'btn', onclick: () => exportAs('gpx', 'application/gpx+xml') }, 'GPX'));
      tools.hidden = false;

      const places = new Map();
      for (const r of routes) {
        for (const stp of r.stops) {
          if ((stp.kind === 'depot' || stp.kind === 'disposal') && Number.isFinite(stp.lat)) places.set(stp.id, stp);
        }
      }
      map.setPlaces([...places.values()]);
      // Every known bin underneath the routes: the ones not visited are faded, so a skipped bin shows where it is.
      const visited = new Set(shownRoutes.flatMap((r) => r.stops.filter((x) => x.kind === 'bin').map((x) => x.id)));
      map.setBins(allBins.map((b) => ({ ...b, faded: !visited.has(b.id) })));
      map.setRoutes(shownRoutes.map((r) => ({ truck: r.truck, color: colorOf(r.truck), stops: r.stops })));
      map.fitAll();

      replace(manifests, shownRoutes.map((r) => {
        const rows = manifestRows(r);
        return h('section', { class: 'manifest', 'data-truck': r.truck, 'aria-label': `Manifest for ${r.truck}` },
          h('h3', {}, h('span', { class: 'swatch', style: { background: colorOf(r.truck) }, 'aria-hidden': 'true' }), r.truck),
          h('p', { class: 'manifest-meta' }, `${rows.filter((x) => x.kind === 'bin').length} bins · ${km(r.distance_km)} · `
            + `${minutes(r.duration_min)} · ${litres(r.collected_l)} collected`),
          table([
            { label: '#', value: (x) => (x.number === null ? '' : String(x.number)), className: 'num' },
            { label: 'Stop', value: (x) => (x.kind === 'bin' ? binCell(x.id) : [h('strong', {}, KIND_LABEL[x.kind] || x.kind), x.kind === 'break' || x.id.toLowerCase() === x.kind ? '' : ` ${x.id}`]) },
            { label: 'ETA', value: (x) => clock(x.arrive), className: 'num' },
            { label: 'Expected fill', short: 'fill', value: (x) => (x.kind === 'bin' ? pct(x.fill) : ''), className: 'num' },
            { label: 'Volume', short: 'vol.', value: (x) => (x.kind === 'bin' ? litres(x.volume_l) : ''), className: 'num' },
            { label: 'Load after', short: 'load', value: (x) => litres(x.load_after_l), className: 'num' },
          ], rows, { caption: `Stops for ${r.truck}`, rowAttrs: (x) => ({ class: `stop-${x.kind}`, 'data-stop': x.kind === 'bin' ? x.id : false }) }));
      }));

      const reasons = (list) => table([
        { label: 'Bin', value: (x) => x.id },
        { label: 'Why', value: (x) => x.reason || '–' },
      ], list || []);
      replace(why,
        h('details', { class: 'no-print-closed' }, h('summary', {}, `Why these ${(res.included || []).length} bins were taken`), reasons(res.included)),
        h('details', {}, h('summary', {}, `Why ${(res.skipped || []).length} bins were skipped`), reasons(res.skipped)));
    }

    function show(p) {
      plan = p;
      rememberTrucks(p);
      if (p.status === 'running') {
        busy(true);
        return;
      }
      busy(false);
      stopPolling();
      if (p.status === 'failed') {
        status.textContent = `Planning failed: ${p.error || 'no reason given'}`;
        status.className = 'status error';
        return;
      }
      status.className = 'status';
      status.textContent = `Plan ${String(p.id).slice(0, 8)} ready.`;
      if (p.result) {
        renderPlan();
        loadHistory();
        if (p.published_at) showReports(p);
      }
    }

    async function poll(id) {
      try {
        const p = await api(`/api/plans/${encodeURIComponent(id)}`);
        if (!alive) return;
        show(p);
        if (p.status === 'running') pollTimer = setTimeout(() => poll(id), POLL_MS);
      } catch (err) {
        if (!alive) return;
        busy(false);
        stopPolling();
        status.textContent = `Lost track of the plan: ${err.message}`;
        status.className = 'status error';
      }
    }

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = {
        date: date.value || undefined,
        time_limit_s: Number(limit.value) || undefined,
        threshold: threshold.value ? Number(threshold.value) / 100 : undefined,
      };
      if (fleetMode.value === 'count') {
        body.trucks = Math.round(Number(truckCount.value));
        if (!(body.trucks >= 1)) {
          status.textContent = 'Number of trucks: give a whole number of at least 1.';
          status.className = 'status error';
          return;
        }
      } else if (fleetMode.value === 'ids') {
        body.trucks = truckIdsInput.value.split(/[,\s]+/).map((x) => x.trim()).filter(Boolean);
        if (!body.trucks.length) {
          status.textContent = 'Truck ids: name at least one truck, or choose "All configured trucks".';
          status.className = 'status error';
          return;
        }
      }
      requested = true;
      stopPolling();
      busy(true);
      status.className = 'status';
      status.textContent = 'Sending the request…';
      let started;
      try {
        started = await api('/api/plans', { method: 'POST', body });
      } catch (err) {
        busy(false);
        status.textContent = `The server refused the plan: ${err.message}`;
        status.className = 'status error';
        return;
      }
      const t0 = Date.now();
      const budget = body.time_limit_s ? body.time_limit_s * 1000 : null;
      if (budget) progress.value = 0;
      else progress.removeAttribute('value'); // indeterminate: the server's limit is not known here
      tickTimer = setInterval(() => {
        const elapsed = Date.now() - t0;
        if (budget) progress.value = Math.min(99, (100 * elapsed) / (budget * 1.2));
        status.textContent = `Solving… ${Math.round(elapsed / 1000)} s`
          + (budget ? ` of at most ${Math.round(budget / 1000)} s` : ' (server time limit)');
      }, 250);
      poll(started.id);
    });

    api('/api/bins').then((bs) => {
      allBins = bs;
      if (plan && plan.result && !result.hidden) renderPlan();
    }).catch(() => { /* the routes still show without the other bins */ });

    (async () => {
      let p;
      try {
        p = await api('/api/plans/latest');
      } catch (err) {
        if (!alive || requested) return;
        status.textContent = err instanceof ApiError && err.status === 404 ? 'No plan yet.' : `Could not load the latest plan: ${err.message}`;
        return;
      }
      // A plan the user asked for meanwhile wins over the one that was latest when the page opened.
      if (!alive || requested) return;
      show(p);
      if (p.status === 'running') {
        status.textContent = 'A plan is being solved…';
        poll(p.id);
      }
    })();

    return () => { alive = false; stopPolling(); map.destroy(); };
  },
};
