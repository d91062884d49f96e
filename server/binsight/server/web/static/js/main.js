// Entry point: sign-in, navigation by role, and a hash router (#/map, #/plan, ...).
import { api } from './api.js';
import { can, clearToken, getToken, setToken } from './auth.js';
import { clearFlash, flash, h, replace } from './dom.js';
import { shortDateTime } from './format.js';
import camerasView from './views/cameras.js';
import labelView from './views/label.js';
import manifestView from './views/manifest.js';
import mapView from './views/map.js';
import modelsView from './views/models.js';
import planView from './views/plan.js';
import savingsView from './views/savings.js';

const VIEWS = [mapView, planView, manifestView, camerasView, labelView, modelsView, savingsView];
// Old addresses of renamed pages, kept working for bookmarks and links: #/fleet/<bin> -> #/cameras/<bin>.
const RENAMED = { fleet: 'cameras' };

// notice: a message for the page being redirected to (flashed after the change clears the old ones).
const state = { me: null, cleanup: null, notice: null };

const $ = (id) => document.getElementById(id);

function showLogin(message = '') {
  state.me = null;
  unmount();
  $('nav').hidden = true;
  $('who').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('token').value = '';
  $('token').focus();
  document.title = 'Sign in · binsight';
}

function allowed() {
  return VIEWS.filter((v) => can(state.me.role, v.ability));
}

function renderNav(current) {
  const nav = $('nav');
  replace(nav, h('ul', {}, allowed().map((v) => h('li', {},
    h('a', { href: `#/${v.id}`, 'aria-current': v.id === current ? 'page' : false, 'data-view': v.id }, v.title)))));
  nav.hidden = false;
}

function unmount() {
  if (state.cleanup) {
    try { state.cleanup(); } catch (err) { console.error(err); }
  }
  state.cleanup = null;
  replace($('view'));
}

function route() {
  if (!state.me) return;
  const [id, ...rest] = location.hash.replace(/^#\/?/, '').split('/');
  if (Object.hasOwn(RENAMED, id)) {
    location.replace(`#/${[RENAMED[id], ...rest].join('/')}`);
    return;
  }
  const views = allowed();
  if (!views.length) {
    // A role this page does not know (a newer server?): say so rather than show an empty shell.
    unmount();
    replace($('view'), h('p', { class: 'error' }, `This page offers nothing to the role "${state.me.role}".`));
    return;
  }
  const view = views.find((v) => v.id === id);
  if (!view) {
    if (id && VIEWS.some((v) => v.id === id)) state.notice = `Your role (${state.me.role}) cannot open that page.`;
    location.replace(`#/${views[0].id}`);
    return;
  }
  unmount();
  // An error about the page left behind would otherwise stay up over the new one.
  clearFlash();
  if (state.notice) flash(state.notice, 'error');
  state.notice = null;
  renderNav(view.id);
  document.title = `${view.title} · binsight`;
  const container = $('view');
  const ctx = { me: state.me, can: (ability) => can(state.me.role, ability), params: rest.map(decodeURIComponent) };
  state.cleanup = view.mount(container, ctx) || null;
}

async function signIn(token, interactive = false) {
  setToken(token);
  try {
    state.me = await api('/api/me');
  } catch (err) {
    clearToken();
    showLogin(err.status === 401 ? 'That token was not accepted.' : err.message);
    return;
  }
  $('login').hidden = true;
  $('who').hidden = false;
  $('who-name').textContent = `${state.me.name} (${state.me.role})`;
  route();
  // After the form, move to the content (the form is gone); on a reload, leave focus where the browser puts it.
  if (interactive) $('main').focus();
}

/** The service worker keeps the page and the last bins and plans for use without a connection. */
function offlineSupport() {
  if (!('serviceWorker' in navigator)) return;
  navigator.serviceWorker.register('/sw.js')
    .then(() => navigator.serviceWorker.ready)
    .then((reg) => reg.active && reg.active.postMessage({
      type: 'binsight:keep', urls: performance.getEntriesByType('resource').map((r) => r.name),
    }))
    .catch((err) => console.warn('no offline copy:', err.message));
  const note = $('offline-note');
  window.addEventListener('binsight:data', (e) => {
    const { cachedAt } = e.detail;
    if (cachedAt === null) { note.hidden = true; return; }
    note.textContent = `No connection: showing data saved ${cachedAt ? shortDateTime(cachedAt) : 'earlier'}. It may be out of date.`;
    note.hidden = false;
  });
}

function forgetSaved() {
  const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
  if (worker) worker.postMessage('binsight:forget');
}

function start() {
  offlineSupport();
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $('token').value.trim();
    if (!token) {
      $('login-error').textContent = 'Enter a token.';
      return;
    }
    signIn(token, true);
  });
  $('logout').addEventListener('click', () => {
    clearToken();
    forgetSaved();
    showLogin('Signed out.');
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('binsight:unauthorized', () => showLogin('Your session ended: sign in again.'));
  // A sign-in link (`/#token=...`, e.g. printed by `binsight demo`): take the token and drop it from the
  // address at once, so it stays in neither the address bar nor the history.
  const linked = /^#token=([^&]+)/.exec(location.hash);
  if (linked) {
    // No page named: each role lands on its first page (a driver on its truck's manifest, not the map).
    history.replaceState(null, '', `${location.pathname}${location.search}#/`);
    signIn(decodeURIComponent(linked[1]), true);
    return;
  }
  const token = getToken();
  if (token) signIn(token);
  else showLogin();
}

start();
