// The console's shell: language, session, navigation by role, a hash router, and the one place
// where problems are shown (a problem's `detail`, never a blank page).

import { h, clear, $ } from './dom.js';
import { t, setLang, lang } from './i18n.js';
import { loadConfig, session, signOut, oidcCallback } from './auth.js';
import { ApiProblem } from './api.js';
import { signInView } from './signin.js';
import { queueView } from './queue.js';
import { reviewView } from './review.js';
import { supervisorView } from './supervisor.js';

const main = () => $('#main');
let dispose = null;

/** Show a problem (ApiProblem, Error or text) in the alert region. */
export function showProblem(error) {
  const box = $('#problem');
  clear(box);
  const problem = error instanceof ApiProblem ? error.problem : null;
  const status = error instanceof ApiProblem ? error.status : null;
  const detail = problem?.detail || error?.message || String(error);
  box.append(
    h('p', {}, h('strong', {}, t('problem.title')), status ? ` (${t('problem.status', { status })})` : ''),
    h('p', { class: 'problem-detail', dataset: { status: status ?? '' } }, detail),
  );
  if (problem?.field) box.append(h('p', { class: 'muted' }, `field: ${problem.field}`));
  if (Array.isArray(problem?.errors)) {
    box.append(h('ul', {}, problem.errors.map((e) => h('li', {}, `${e.field}: ${e.detail}`))));
  }
  box.append(h('button', { type: 'button', class: 'secondary', onclick: () => { box.hidden = true; } }, t('problem.dismiss')));
  box.hidden = false;
}

export function clearProblem() {
  const box = $('#problem');
  box.hidden = true;
  clear(box);
}

export function notify(text) {
  $('#notice').textContent = text;
}

export function homeFor(who) {
  if (!who) return '#/signin';
  if (who.role === 'validator') return '#/queue';
  if (who.role === 'supervisor' || who.role === 'admin') return '#/supervisor';
  return '#/home';
}

function renderChrome() {
  const who = session();
  document.documentElement.lang = lang();
  document.title = `${t('app.name')} · ${who ? t(`role.${who.role}`) : t('nav.signin')}`;
  $('#skip-link').textContent = t('app.skip');
  $('#brand-name').textContent = t('app.name');
  const langButton = $('#lang');
  langButton.textContent = t('app.lang.switch');
  langButton.title = t('app.lang.label');
  langButton.setAttribute('lang', lang() === 'es' ? 'en' : 'es');
  const out = $('#signout');
  out.textContent = t('app.signout');
  out.hidden = !who;
  $('#who').textContent = who
    ? t('app.who', { sub: who.sub, role: t(`role.${who.role}`), clients: who.clients.join(', ') })
    : '';
  const nav = clear($('#nav'));
  nav.setAttribute('aria-label', t('nav.label'));
  const links = [];
  if (!who) links.push(['#/signin', t('nav.signin')]);
  if (who?.role === 'validator') links.push(['#/queue', t('nav.queue')]);
  if (who && ['supervisor', 'admin'].includes(who.role)) links.push(['#/supervisor', t('nav.supervisor')]);
  const here = location.hash.split('?')[0];
  nav.append(h('ul', {}, links.map(([href, label]) => h('li', {}, h('a', { href, 'aria-current': here.startsWith(href) ? 'page' : false }, label)))));
}

function agentHome(root) {
  const who = session();
  root.append(h('section', { class: 'card' },
    h('h1', {}, t('home.agent.title')),
    h('p', {}, t('home.agent.body', { role: t(`role.${who?.role || 'agent'}`) }))));
}

async function route() {
  if (dispose) {
    try { dispose(); } catch { /* a view's cleanup never blocks the next one */ }
    dispose = null;
  }
  clearProblem();
  notify('');
  renderChrome();
  const root = clear(main());
  root.dataset.state = 'loading';
  const hash = location.hash || '#/';
  const who = session();
  const [path, query] = hash.slice(1).split('?');
  const params = new URLSearchParams(query || '');
  let view = 'home';
  try {
    if (!who || path === '/signin') {
      view = 'signin';
      if (who && path === '/signin') { location.hash = homeFor(who); return; }
      dispose = await signInView(root, { returnTo: path === '/signin' ? null : hash });
    } else if (path === '/' || path === '') {
      location.replace(homeFor(who));
      return;
    } else if (path === '/queue') {
      view = 'queue';
      dispose = await queueView(root, params);
    } else if (path.startsWith('/review/')) {
      view = 'review';
      dispose = await reviewView(root, decodeURIComponent(path.slice('/review/'.length)), params);
    } else if (path === '/supervisor') {
      view = 'supervisor';
      dispose = await supervisorView(root, params);
    } else {
      view = 'home';
      agentHome(root);
    }
    root.dataset.state = 'ready';
  } catch (error) {
    root.dataset.state = 'error';
    root.append(h('h1', {}, t('problem.title')));
    showProblem(error);
    if (error instanceof ApiProblem && error.status === 401) {
      signOut();
      renderChrome();
    }
  } finally {
    root.dataset.view = view;
  }
}

export function rerender() {
  route();
}

async function start() {
  window.addEventListener('error', (event) => showProblem(new Error(t('problem.unexpected', { detail: event.message }))));
  window.addEventListener('unhandledrejection', (event) => showProblem(event.reason instanceof Error ? event.reason : new Error(t('problem.unexpected', { detail: String(event.reason) }))));
  $('#lang').addEventListener('click', () => { setLang(lang() === 'es' ? 'en' : 'es'); route(); });
  $('#signout').addEventListener('click', () => {
    const mode = session()?.mode;
    signOut();
    if (mode === 'oidc') {
      loadConfig().then((c) => {
        if (c.logoutUrl) {
          const url = new URL(c.logoutUrl);
          url.searchParams.set('client_id', c.clientId);
          url.searchParams.set('logout_uri', c.redirectUri);
          location.assign(url.toString());
        } else {
          location.hash = '#/signin';
        }
      });
    } else {
      location.hash = '#/signin';
      route();
    }
  });
  setLang(lang());
  window.addEventListener('hashchange', route);
  try {
    await loadConfig();
    const back = await oidcCallback();
    if (back) location.hash = back;
  } catch (error) {
    renderChrome();
    clear(main());
    showProblem(new Error(t('signin.oidc.failed', { detail: error.message })));
  }
  await route();
}

start();
