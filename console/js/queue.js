// The validator's queue: claim the next pre-sale (the API picks it: riskiest, then oldest), and
// what is waiting in the campaigns the validator watches, by risk and age.

import { h, clear } from './dom.js';
import { t, fmtMoney, fmtDuration } from './i18n.js';
import { get, post } from './api.js';
import { showProblem, notify } from './app.js';

const CAMPAIGNS_KEY = 'console.campaigns';

export function riskClass(score) {
  if (score === undefined || score === null) return 'low';
  if (score >= 40) return 'high';
  if (score >= 15) return 'medium';
  return 'low';
}

/** READY_FOR_REVIEW pre-sales of a campaign (up to `pages` pages of 100), riskiest and oldest first. */
export async function waiting(campaign, pages = 3) {
  const items = [];
  let cursor = null;
  let more = false;
  for (let page = 0; page < pages; page += 1) {
    const query = new URLSearchParams({ campaign, status: 'READY_FOR_REVIEW', limit: '100' });
    if (cursor) query.set('cursor', cursor);
    const body = await get(`/presales?${query}`);
    items.push(...(body.items || []));
    cursor = body.next_cursor;
    if (!cursor) break;
    more = page === pages - 1;
  }
  items.sort((a, b) => (b.risk_score ?? 0) - (a.risk_score ?? 0)
    || String(a.ready_at || a.created_at).localeCompare(String(b.ready_at || b.created_at)));
  return { items, more };
}

export function ageSeconds(presale, now = Date.now()) {
  const since = Date.parse(presale.ready_at || presale.updated_at || presale.created_at);
  return Number.isNaN(since) ? null : Math.max(0, (now - since) / 1000);
}

function waitingTable(campaign, items, more) {
  if (!items.length) return h('p', {}, t('queue.none', { campaign }));
  return h('div', {},
    h('table', { class: 'queue-table', dataset: { campaign } },
      h('caption', {}, t('queue.caption', { campaign })),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('queue.col.risk')),
        h('th', { scope: 'col' }, t('queue.col.waiting')),
        h('th', { scope: 'col' }, t('queue.col.customer')),
        h('th', { scope: 'col', class: 'num' }, t('queue.col.total')),
        h('th', { scope: 'col' }, t('queue.col.claimed')))),
      h('tbody', {}, items.map((p) => h('tr', { dataset: { id: p.id } },
        h('td', {}, h('span', { class: `badge ${riskClass(p.risk_score)}` }, String(p.risk_score ?? 0))),
        h('td', {}, fmtDuration(ageSeconds(p))),
        h('td', {}, p.customer?.full_name || ''),
        h('td', { class: 'num' }, fmtMoney(p.total)),
        h('td', {}, p.claim?.validator_id || t('common.none')))))),
    more ? h('p', { class: 'muted' }, t('queue.more', { count: items.length })) : null);
}

export async function queueView(root) {
  const claim = h('button', { type: 'button', id: 'claim-next', 'aria-describedby': 'claim-hint' }, t('queue.claim'));
  claim.addEventListener('click', async () => {
    claim.disabled = true;
    performance.mark('console:claim');
    try {
      const claimed = await post('/reviews/next');
      if (!claimed) {
        notify(t('queue.empty'));
        claim.disabled = false;
        return;
      }
      location.hash = `#/review/${encodeURIComponent(claimed.presale.id)}`;
    } catch (error) {
      claim.disabled = false;
      showProblem(error);
    }
  });

  let saved = '';
  try { saved = localStorage.getItem(CAMPAIGNS_KEY) || ''; } catch { /* ignore */ }
  const campaigns = h('input', { type: 'text', id: 'queue-campaigns', value: saved, autocomplete: 'off' });
  const list = h('div', { id: 'queue-waiting', 'aria-live': 'polite' });
  const show = async () => {
    const names = campaigns.value.split(/[\s,]+/).filter(Boolean);
    try { localStorage.setItem(CAMPAIGNS_KEY, names.join(',')); } catch { /* ignore */ }
    clear(list);
    for (const campaign of names) {
      try {
        const { items, more } = await waiting(campaign);
        list.append(waitingTable(campaign, items, more));
      } catch (error) {
        showProblem(error);
      }
    }
  };
  const filter = h('form', { class: 'row', onsubmit: (e) => { e.preventDefault(); show(); } },
    h('div', {}, h('label', { for: 'queue-campaigns' }, t('queue.campaigns')), campaigns),
    h('button', { type: 'submit', class: 'secondary', id: 'queue-waiting-show' }, t('queue.show')));

  root.append(
    h('h1', {}, t('queue.title')),
    h('section', { class: 'card', 'aria-labelledby': 'claim-title' },
      h('h2', { id: 'claim-title' }, t('queue.claim')),
      h('p', { class: 'hint', id: 'claim-hint' }, t('queue.claim.hint')),
      claim),
    h('section', { class: 'card', 'aria-labelledby': 'waiting-title' },
      h('h2', { id: 'waiting-title' }, t('queue.waiting')),
      filter,
      list));
  if (saved) await show();
  claim.focus();
  return null;
}
