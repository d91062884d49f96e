// Entry point: sign-in, navigation by role, and a hash router (#/map, #/plan, ...).
import { api } from './api.js';
import { can, clearToken, getToken, setToken } from './auth.js';
import { flash, h, replace } from './dom.js';
import camerasView from './views/cameras.js';
import labelView from './views/label.js';
import mapView from './views/map.js';
import modelsView from './views/models.js';
import planView from './views/plan.js';
import savingsView from './views/savings.js';

const VIEWS = [mapView, planView, camerasView, labelView, modelsView, savingsView];
// Old addresses of renamed pages, kept working for bookmarks and links: #/fleet/<bin> -> #/cameras/<bin>.
const RENAMED = { fleet: 'cameras' };

const state = { me: null, cleanup: null };

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
    if (id && VIEWS.some((v) => v.id === id)) flash(`Your role (${state.me.role}) cannot open that page.`, 'error');
    location.replace(`#/${views[0].id}`);
    return;
  }
  unmount();
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

function start() {
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
    showLogin('Signed out.');
  });
  window.addEventListener('hashchange', route);
  window.addEventListener('binsight:unauthorized', () => showLogin('Your session ended: sign in again.'));
  // A sign-in link (`/#token=...`, e.g. printed by `binsight demo`): take the token and drop it from the
  // address at once, so it stays in neither the address bar nor the history.
  const linked = /^#token=([^&]+)/.exec(location.hash);
  if (linked) {
    history.replaceState(null, '', `${location.pathname}${location.search}#/map`);
    signIn(decodeURIComponent(linked[1]), true);
    return;
  }
  const token = getToken();
  if (token) signIn(token);
  else showLogin();
}

start();
