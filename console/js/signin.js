// The sign-in screen: a dev form on the local stack, the identity provider's login on AWS.

import { h } from './dom.js';
import { t } from './i18n.js';
import { loadConfig, devSignIn, oidcStart } from './auth.js';
import { showProblem, homeFor, rerender } from './app.js';

const ROLES = ['validator', 'supervisor', 'agent', 'finance', 'admin'];
const DEFAULT_SUB = { validator: 'val-1', supervisor: 'sup-1', agent: 'agent-1', finance: 'fin-1', admin: 'admin-1' };

export async function signInView(root, { returnTo }) {
  const config = await loadConfig();
  const card = h('section', { class: 'card', 'aria-labelledby': 'signin-title' }, h('h1', { id: 'signin-title' }, t('signin.title')));
  root.append(card);

  if (config.mode === 'oidc') {
    card.append(
      h('p', {}, t('signin.oidc')),
      h('button', { type: 'button', id: 'oidc-signin', onclick: () => oidcStart(returnTo || '#/').catch(showProblem) }, t('signin.oidc.submit')),
    );
    return null;
  }

  const role = h('select', { id: 'signin-role', name: 'role' }, ROLES.map((r) => h('option', { value: r }, t(`role.${r}`))));
  const sub = h('input', { type: 'text', id: 'signin-sub', name: 'sub', required: true, autocomplete: 'username', value: DEFAULT_SUB.validator });
  const clients = h('input', { type: 'text', id: 'signin-clients', name: 'clients', required: true, value: 'acme', 'aria-describedby': 'signin-clients-hint' });
  let subTouched = false;
  sub.addEventListener('input', () => { subTouched = true; });
  role.addEventListener('change', () => { if (!subTouched) sub.value = DEFAULT_SUB[role.value]; });
  const form = h('form', { id: 'signin-form', novalidate: true },
    h('p', {}, t('signin.dev')),
    h('div', { class: 'field' }, h('label', { for: 'signin-role' }, t('signin.role')), role),
    h('div', { class: 'field' }, h('label', { for: 'signin-sub' }, t('signin.sub')), sub),
    h('div', { class: 'field' },
      h('label', { for: 'signin-clients' }, t('signin.clients')), clients,
      h('p', { class: 'hint', id: 'signin-clients-hint' }, t('signin.clients.hint'))),
    h('button', { type: 'submit', id: 'signin-submit' }, t('signin.submit')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    for (const input of [sub, clients]) {
      if (!input.value.trim()) {
        input.setAttribute('aria-invalid', 'true');
        input.focus();
        showProblem(new Error(t('signin.required')));
        return;
      }
      input.removeAttribute('aria-invalid');
    }
    try {
      const who = await devSignIn({
        role: role.value,
        sub: sub.value.trim(),
        clients: clients.value.split(/[\s,]+/).filter(Boolean),
      });
      const target = returnTo && returnTo !== '#/' ? returnTo : homeFor(who);
      if (location.hash === target) rerender(); else location.hash = target;
    } catch (error) {
      showProblem(error);
    }
  });
  card.append(form);
  role.focus();
  return null;
}
