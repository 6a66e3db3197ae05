// The supervisor's screen: each campaign's queue (size, age, risk), the validators' work of a day
// (`GET /reviews/metrics`), and the KPIs over a date range as charts (`GET /reports/kpis`), with
// the API's own CSV to download.

import { h, clear } from './dom.js';
import { t, fmtNumber, fmtPercent, fmtDuration } from './i18n.js';
import { get, api } from './api.js';
import { showProblem } from './app.js';
import { waiting, ageSeconds } from './queue.js';
import { barChart } from './charts.js';

const CAMPAIGNS_KEY = 'console.campaigns';

const KPIS = [
  { key: 'contact_rate', basis: (c) => `${c.contacts}/${c.attempts}` },
  { key: 'effective_rate', basis: (c) => `${c.effective}/${c.contacts}` },
  { key: 'presale_conversion', basis: (c) => `${c.presales}/${c.effective}` },
  { key: 'verification_pass_rate', basis: (c) => `${c.verified_sales}/${c.presales}` },
  { key: 'aht_seconds', basis: (c) => `${c.talk_seconds + c.hold_seconds + c.wrap_seconds} s / ${c.handled}` },
];

function isoDay(date) {
  return date.toISOString().slice(0, 10);
}

function stat(label, value, id) {
  return h('div', { class: 'stat' }, h('dt', {}, label), h('dd', { id, dataset: { value: String(value ?? '') } }, value ?? t('common.none')));
}

async function queueSection(campaign) {
  const { items, more } = await waiting(campaign);
  const ages = items.map((p) => ageSeconds(p));
  const known = ages.filter((a) => a !== null);
  const oldest = known.length ? Math.max(...known) : null;
  // How long they have waited, by risk: the supervisor's "is the queue keeping up?".
  const BUCKETS = [[15 * 60, '< 15 min'], [3600, '15–60 min'], [4 * 3600, '1–4 h'], [Infinity, '> 4 h']];
  const bucketOf = (age) => BUCKETS.findIndex(([limit]) => age < limit);
  const high = (p) => (p.risk_score ?? 0) >= 40;
  const counts = BUCKETS.map(() => ({ high: 0, other: 0 }));
  items.forEach((p, i) => {
    const age = ages[i] ?? 0;
    counts[bucketOf(age)][high(p) ? 'high' : 'other'] += 1;
  });
  return h('section', { class: 'card', 'aria-labelledby': `queue-${campaign}`, dataset: { campaign } },
    h('h2', { id: `queue-${campaign}` }, `${t('sup.queue')}: ${campaign}`),
    h('dl', { class: 'facts' },
      stat(t('sup.queue.size'), `${items.length}${more ? '+' : ''}`, `queue-size-${campaign}`),
      stat(t('sup.queue.oldest'), oldest === null ? null : fmtDuration(oldest)),
      stat(t('sup.queue.claimed'), items.filter((p) => p.claim).length),
      stat(t('sup.queue.high'), items.filter(high).length)),
    h('table', { class: 'queue-ages' },
      h('caption', {}, t('sup.queue.ages')),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('sup.queue.age')),
        h('th', { scope: 'col', class: 'num' }, t('sup.queue.high')),
        h('th', { scope: 'col', class: 'num' }, t('sup.queue.other')))),
      h('tbody', {}, BUCKETS.map(([, label], i) => h('tr', {},
        h('th', { scope: 'row' }, label),
        h('td', { class: 'num' }, String(counts[i].high)),
        h('td', { class: 'num' }, String(counts[i].other)))))));
}

async function metricsSection(campaign, day) {
  const m = await get(`/reviews/metrics?${new URLSearchParams({ campaign, day })}`);
  const decided = (m.approved ?? 0) + (m.rejected ?? 0) + (m.returned ?? 0);
  const section = h('section', { class: 'card', 'aria-labelledby': `metrics-${campaign}`, dataset: { campaign } },
    h('h2', { id: `metrics-${campaign}` }, `${t('sup.metrics', { day: m.day || day })}: ${campaign}`),
    h('dl', { class: 'facts' },
      stat(t('sup.metrics.reviewed'), m.reviewed, `metrics-reviewed-${campaign}`),
      stat(t('sup.metrics.approved'), m.approved),
      stat(t('sup.metrics.rejected'), m.rejected),
      stat(t('sup.metrics.returned'), m.returned),
      stat(t('sup.metrics.approval'), decided ? fmtPercent((m.approved ?? 0) / decided, 1) : null),
      stat(t('sup.metrics.median'), m.time_to_decision?.median),
      stat(t('sup.metrics.p90'), m.time_to_decision?.p90)));
  const people = (rows, idKey, caption, col) => h('table', {},
    h('caption', {}, caption),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, col),
      h('th', { scope: 'col', class: 'num' }, t('sup.col.decided')),
      h('th', { scope: 'col', class: 'num' }, t('sup.col.approved')),
      h('th', { scope: 'col', class: 'num' }, t('sup.col.rate')))),
    h('tbody', {}, rows.map((r) => {
      const n = r.decided ?? r.reviewed ?? 0;
      const rate = r.approval_rate ?? (n ? (r.approved ?? 0) / n : null);
      return h('tr', {},
        h('th', { scope: 'row' }, r[idKey]),
        h('td', { class: 'num' }, fmtNumber(n)),
        h('td', { class: 'num' }, fmtNumber(r.approved ?? 0)),
        h('td', { class: 'num' }, rate === null ? t('common.none') : fmtPercent(rate, 1)));
    })));
  if (Array.isArray(m.validators) && m.validators.length) {
    section.append(people(m.validators, 'validator_id', t('sup.metrics.validators'), t('sup.col.validator')));
  }
  if (Array.isArray(m.agents) && m.agents.length) {
    section.append(people(m.agents, 'agent_id', t('sup.metrics.agents'), t('sup.col.agent')));
  }
  return section;
}

function display(key, raw) {
  if (raw === null || raw === undefined) return t('kpi.nodata');
  const value = Number(raw);
  return key === 'aht_seconds' ? `${fmtNumber(value, 1)} s` : fmtPercent(value, 2);
}

async function kpiSection(campaign, from, to) {
  const query = new URLSearchParams({ campaign, from, to, group_by: 'day' });
  const report = await get(`/reports/kpis?${query}`);
  const rows = [...(report.rows || [])].sort((a, b) => a.day.localeCompare(b.day));
  const csv = h('button', { type: 'button', class: 'secondary', id: `csv-${campaign}` }, t('sup.csv'));
  csv.addEventListener('click', async () => {
    try {
      const response = await api('GET', `/reports/kpis?${query}`, undefined, { accept: 'text/csv', raw: true });
      const blob = await response.blob();
      const link = h('a', { href: URL.createObjectURL(blob), download: `kpis-${campaign}-${from}-${to}.csv` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
    } catch (error) { showProblem(error); }
  });
  const section = h('section', { 'aria-labelledby': `kpis-${campaign}`, class: 'kpi-report', dataset: { campaign } },
    h('div', { class: 'review-head' }, h('h2', { id: `kpis-${campaign}` }, `${t('sup.kpis', { from, to })}: ${campaign}`), csv));
  if (report.days_without_report?.length && rows.length) {
    section.append(h('p', { class: 'muted' }, t('sup.kpis.missing', { days: report.days_without_report.join(', ') })));
  }
  if (!rows.length) {
    section.append(h('p', {}, t('sup.kpis.none')));
    return section;
  }
  section.append(h('div', { class: 'kpis' }, KPIS.map(({ key, basis }) => barChart({
    id: `kpi-${key}`,
    title: t(`kpi.${key}`),
    axis: (v) => (key === 'aht_seconds' ? `${Math.round(v)} s` : fmtPercent(v, 0)),
    points: rows.map((r) => {
      const raw = r.rates?.[key] ?? null;
      return { label: r.day, raw, value: raw === null ? null : Number(raw), display: display(key, raw), basis: basis(r.counts || {}) };
    }),
  }))));
  return section;
}

export async function supervisorView(root, params) {
  const today = new Date();
  const yesterday = new Date(Date.now() - 86_400_000);
  let saved = '';
  try { saved = localStorage.getItem(CAMPAIGNS_KEY) || ''; } catch { /* ignore */ }
  const campaign = h('input', { type: 'text', id: 'sup-campaign', required: true, value: params.get('campaign') || saved, autocomplete: 'off' });
  const from = h('input', { type: 'date', id: 'sup-from', value: params.get('from') || isoDay(new Date(yesterday.getTime() - 13 * 86_400_000)) });
  const to = h('input', { type: 'date', id: 'sup-to', value: params.get('to') || isoDay(yesterday) });
  const day = h('input', { type: 'date', id: 'sup-day', value: params.get('day') || isoDay(today) });
  const results = h('div', { id: 'sup-results' });
  const form = h('form', { class: 'row card', id: 'sup-form' },
    h('div', {}, h('label', { for: 'sup-campaign' }, t('sup.campaign')), campaign),
    h('div', {}, h('label', { for: 'sup-from' }, t('sup.from')), from),
    h('div', {}, h('label', { for: 'sup-to' }, t('sup.to')), to),
    h('div', {}, h('label', { for: 'sup-day' }, t('sup.day')), day),
    h('button', { type: 'submit', id: 'sup-show' }, t('sup.show')));
  const show = async () => {
    const names = campaign.value.split(/[\s,]+/).filter(Boolean);
    if (!names.length) { campaign.focus(); return; }
    try { localStorage.setItem(CAMPAIGNS_KEY, names.join(',')); } catch { /* ignore */ }
    clear(results);
    results.dataset.state = 'loading';
    for (const name of names) {
      const block = h('div', { class: 'campaign-block', dataset: { campaign: name } });
      results.append(block);
      const parts = await Promise.allSettled([queueSection(name), metricsSection(name, day.value), kpiSection(name, from.value, to.value)]);
      for (const part of parts) {
        if (part.status === 'fulfilled') block.append(part.value); else showProblem(part.reason);
      }
    }
    results.dataset.state = 'ready';
  };
  form.addEventListener('submit', (event) => { event.preventDefault(); show(); });
  root.append(h('h1', {}, t('sup.title')), form, results);
  if (campaign.value) await show();
  return null;
}
