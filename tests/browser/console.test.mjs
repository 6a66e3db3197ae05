// The console in a real browser: Debian's Chromium driven by playwright-core, against the local
// stack's /console. Run by tests/e2e_console.rs, which sets up the data through the real API and
// passes what it expects in CONSOLE_CASE (JSON); it reads the last line this script prints,
// `RESULT {json}`, and its exit status (0 only when every check passed).
//
//   CONSOLE_CASE='{"console_url": "http://127.0.0.1:3000/console/", …}' node tests/browser/console.test.mjs
//
// Checks: the first load's transferred bytes (compressed, < 300 KB) and no third-party request;
// a validator signs in (dev), claims the pre-sale, the audio element loads that recording version
// and reports its duration, the findings and the waveform's marks are on screen, a bit is played
// (the playback recorded and shown in the audit), and the approval is made with the keyboard; an
// agent cannot reach the review screens (the UI offers none; forced, the API's 403 detail shows);
// the supervisor's charts show the day's numbers; axe-core finds no serious or critical
// violation on any screen; a screenshot of each screen is saved.

import { readFileSync, readdirSync, mkdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const input = JSON.parse(process.env.CONSOLE_CASE || '{}');
const CHROMIUM = input.chromium || process.env.CHROMIUM || '/usr/bin/chromium';
const SHOTS = input.screenshot_dir || join(here, '..', '..', 'target', 'console-screenshots');
const FIRST_LOAD_LIMIT = 300 * 1024;
const AXE = readFileSync(join(here, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8');

const result = { checks: [], failures: [], axe: {}, screenshots: [], requests: 0 };
const consoleOrigin = new URL(input.console_url).origin;
const allowedOrigins = new Set([consoleOrigin, ...(input.allowed_origins || [])]);
const thirdParty = new Set();
const cspViolations = [];

function check(name, ok, detail) {
  result.checks.push({ name, ok: Boolean(ok), detail });
  if (!ok) result.failures.push(`${name}: ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
  console.error(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail !== undefined ? ` — ${typeof detail === 'string' ? detail : JSON.stringify(detail)}` : ''}`);
  return ok;
}

function watch(page, label) {
  page.on('request', (request) => {
    result.requests += 1;
    const url = request.url();
    if (url.startsWith('data:') || url.startsWith('blob:')) return;
    const origin = new URL(url).origin;
    if (!allowedOrigins.has(origin)) thirdParty.add(`${label}: ${url}`);
  });
  page.on('console', (message) => {
    const text = message.text();
    if (/Content Security Policy/i.test(text)) cspViolations.push(`${label}: ${text}`);
    if (message.type() === 'error') console.error(`  [${label} console] ${text}`);
  });
  page.on('pageerror', (error) => {
    result.failures.push(`${label}: uncaught page error: ${error.message}`);
    console.error(`  [${label} pageerror] ${error.message}`);
  });
}

async function axe(page, screen) {
  await page.evaluate(AXE);
  const found = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const run = await axe.run(document, { resultTypes: ['violations'] });
    return run.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
  });
  const bad = found.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  result.axe[screen] = { violations: found.length, serious_or_critical: bad.length, ids: found.map((v) => `${v.id}:${v.impact}`) };
  check(`axe-core on ${screen}: no serious or critical violation`, bad.length === 0, bad.length ? bad : `${found.length} minor`);
}

async function shot(page, name) {
  const path = join(SHOTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  result.screenshots.push(path);
}

async function ready(page, view) {
  await page.waitForSelector(`main[data-view="${view}"][data-state="ready"]`, { timeout: 15_000 });
}

async function signIn(page, { role, sub, clients }) {
  await page.goto(input.console_url);
  await ready(page, 'signin');
  await page.selectOption('#signin-role', role);
  await page.fill('#signin-sub', sub);
  await page.fill('#signin-clients', clients);
  await page.click('#signin-submit');
}

// Every string key the console uses is in both languages' tables, and the tables match.
async function strings() {
  const consoleDir = join(here, '..', '..', 'console', 'js');
  const { tables } = await import(join(consoleDir, 'i18n.js'));
  const es = Object.keys(tables.es);
  const en = new Set(Object.keys(tables.en));
  check('the Spanish and English tables have the same keys', es.length === en.size && es.every((k) => en.has(k)),
    { only_es: es.filter((k) => !en.has(k)), only_en: [...en].filter((k) => !tables.es[k]) });
  const used = new Set();
  for (const file of readdirSync(consoleDir).filter((f) => f.endsWith('.js'))) {
    const text = readFileSync(join(consoleDir, file), 'utf8');
    for (const m of text.matchAll(/\bt\('([a-z_]+(?:\.[A-Za-z_]+)+)'/g)) used.add(m[1]);
  }
  const missing = [...used].filter((k) => !(k in tables.es));
  check('every string the screens use is translated', missing.length === 0, missing.length ? missing : `${used.size} keys`);
}

async function main() {
  mkdirSync(SHOTS, { recursive: true });
  await strings();
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}`);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync', '--disable-quic', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
  });
  try {
    await firstLoad(browser);
    await validator(browser);
    await agent(browser);
    await supervisor(browser);
    await oidc(browser);
  } finally {
    await browser.close();
  }
  check('no third-party request (every asset from the stack)', thirdParty.size === 0, [...thirdParty].slice(0, 10));
  check('no Content-Security-Policy violation', cspViolations.length === 0, cspViolations.slice(0, 5));
}

// ----- first load --------------------------------------------------------------------------
async function firstLoad(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  watch(page, 'first-load');
  const responses = [];
  page.on('response', (response) => responses.push(response));
  const started = Date.now();
  await page.goto(input.console_url, { waitUntil: 'networkidle' });
  await ready(page, 'signin');
  const loadMs = Date.now() - started;
  let bytes = 0;
  const files = [];
  for (const response of responses) {
    const sizes = await response.request().sizes().catch(() => null);
    if (!sizes) continue;
    const transferred = sizes.responseBodySize + sizes.responseHeadersSize;
    bytes += transferred;
    const headers = await response.allHeaders();
    files.push({ url: new URL(response.url()).pathname, status: response.status(), bytes: transferred, encoding: headers['content-encoding'] || '' });
  }
  result.first_load = { bytes, kb: Math.round((bytes / 1024) * 10) / 10, files, load_ms: loadMs };
  console.error(`first load: ${files.length} responses, ${(bytes / 1024).toFixed(1)} KB transferred, ${loadMs} ms`);
  for (const f of files) console.error(`  ${f.status} ${f.url} ${f.bytes} B ${f.encoding}`);
  check('first load under 300 KB transferred (compressed)', bytes < FIRST_LOAD_LIMIT, `${(bytes / 1024).toFixed(1)} KB`);
  const js = files.filter((f) => f.url.endsWith('.js'));
  check('scripts arrive compressed', js.length > 0 && js.every((f) => f.encoding === 'gzip' || f.encoding === 'br' || f.bytes < 1024), js);
  const csp = (await (await page.request.get(input.console_url)).headersArray()).find((h) => h.name.toLowerCase() === 'content-security-policy');
  check("the console is served with a Content-Security-Policy of default-src 'self'", csp && /default-src 'self'/.test(csp.value), csp?.value);
  await axe(page, 'signin');
  await shot(page, '01-signin');
  // The English switch: every string from the tables.
  await page.click('#lang');
  await ready(page, 'signin');
  check('the English switch translates the screen', (await page.getAttribute('html', 'lang')) === 'en' && (await page.textContent('#signin-title')).includes('Sign in'), await page.textContent('#signin-title'));
  await context.close();
}

// ----- validator ---------------------------------------------------------------------------
async function validator(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
  const page = await context.newPage();
  watch(page, 'validator');
  await signIn(page, { role: 'validator', sub: input.validator, clients: input.client });
  await ready(page, 'queue');
  check('the validator lands on the queue', await page.isVisible('#claim-next'));
  check('the validator is offered the review queue, not supervision', (await page.$('#nav a[href="#/queue"]')) !== null && (await page.$('#nav a[href="#/supervisor"]')) === null);
  // What is waiting in the campaign, riskiest first.
  await page.fill('#queue-campaigns', input.campaign);
  await page.click('#queue-waiting-show');
  await page.waitForSelector('#queue-waiting table tbody tr', { timeout: 10_000 });
  const waitingIds = await page.$$eval('#queue-waiting tbody tr', (rows) => rows.map((r) => r.dataset.id));
  check('the queue lists what is waiting, riskiest first', waitingIds.length === 3 && waitingIds[0] === input.presale_id, waitingIds);
  await axe(page, 'queue');
  await shot(page, '02-queue');

  const renewals = [];
  page.on('response', (response) => {
    if (/\/reviews\/[^/]+\/renew$/.test(new URL(response.url()).pathname)) renewals.push(response.status());
  });
  await page.click('#claim-next');
  await ready(page, 'review');
  const claimToReady = await page.evaluate(() => {
    const m = performance.measure('claim-to-review', 'console:claim', 'console:review:ready');
    return m.duration;
  });
  result.review_claim_to_interactive_ms = Math.round(claimToReady);
  const shown = await page.getAttribute('main', 'data-presale');
  check('the claimed pre-sale is the one the recording produced', shown === input.presale_id, shown);

  // The audio element on that exact version: its duration as the browser decodes it.
  const src = await page.getAttribute('#player', 'src');
  check('the audio element plays the presigned URL of the bound version', src && src.includes(input.recording_key_fragment), src);
  const duration = await page.waitForFunction(() => {
    const audio = document.querySelector('#player');
    return audio && audio.readyState >= 1 && Number.isFinite(audio.duration) ? audio.duration : null;
  }, null, { timeout: 15_000 }).then((handle) => handle.jsonValue());
  result.audio_duration_s = duration;
  check('the audio element reports the recording\'s duration', Math.abs(duration * 1000 - input.duration_ms) <= 100, `${duration} s, analysis says ${input.duration_ms} ms`);

  // Findings, risk, waveform and marks.
  const codes = await page.$$eval('#findings li', (lis) => lis.map((li) => li.dataset.code));
  check('the findings are on the screen', input.finding_codes.every((c) => codes.includes(c)) && codes.length === input.finding_codes.length, codes);
  const risk = await page.getAttribute('#risk-score', 'data-score');
  check('the risk score is shown', Number(risk) === input.risk_score, risk);
  const peaks = Number(await page.getAttribute('#waveform', 'data-peaks'));
  check('the waveform is drawn from the stored peaks', peaks > 0 && (await page.$('#waveform path.peak')) !== null, `${peaks} peaks`);
  const marks = await page.$$eval('#waveform rect.mark', (rects) => rects.map((r) => r.dataset.kind));
  check("the findings' time marks are drawn on it", input.mark_kinds.every((k) => marks.includes(k)) && marks.length === input.mark_kinds.length, marks);
  const lease = await page.textContent('#lease');
  check('the lease is shown as a countdown', /\d+:\d\d/.test(lease), lease);
  for (let i = 0; i < 50 && !renewals.length; i += 1) await page.waitForTimeout(100);
  check('the lease is renewed while the screen is open (POST /reviews/{id}/renew)', renewals[0] === 200, renewals);

  // Clicking a mark on the waveform, or its button under it, seeks the audio there.
  if (marks.length) {
    const rects = await page.$$('#waveform rect.mark');
    const top = rects[rects.length - 1];
    const start = Number(await top.getAttribute('data-start'));
    await top.click({ force: true });
    const at = await page.evaluate(() => document.querySelector('#player').currentTime);
    check('clicking a mark on the waveform seeks the audio there', Math.abs(at - start) < 0.5, `${at} s for a mark at ${start} s`);
    await page.click('ul.marks button >> nth=0');
    const atButton = await page.evaluate(() => document.querySelector('#player').currentTime);
    check("a mark's button seeks there too (keyboard users)", Math.abs(atButton - input.first_mark_start_s) < 0.5, `${atButton} s`);
    await page.evaluate(() => { document.querySelector('#player').currentTime = 0; });
  }

  // Another version of the call's recording plays in the same player, and back.
  const durationOf = () => page.waitForFunction(() => {
    const audio = document.querySelector('#player');
    return audio.readyState >= 1 && Number.isFinite(audio.duration) ? audio.duration : null;
  }, null, { timeout: 15_000 }).then((handle) => handle.jsonValue());
  await page.click(`#versions button[data-play="${input.other_version_sha256}"]`);
  const otherDuration = await durationOf();
  const note = await page.textContent('#now-playing');
  check('another version of the recording plays (its own duration), said on screen', Math.abs(otherDuration * 1000 - input.other_version_duration_ms) <= 100 && note.length > 0, `${otherDuration} s: ${note}`);
  await page.click('#versions li[data-bound="true"] button');
  const backDuration = await durationOf();
  check('and back to the version under review', Math.abs(backDuration * 1000 - input.duration_ms) <= 100 && (await page.textContent('#now-playing')) === '', `${backDuration} s`);

  await axe(page, 'review');
  await shot(page, '03-review');

  // Play a bit with the keyboard (k), pause (k): a playback is recorded and shown in the audit.
  await page.focus('#review-title');
  await page.keyboard.press('k');
  await page.waitForFunction(() => document.querySelector('#player').currentTime > 1.5, null, { timeout: 15_000 });
  await page.keyboard.press('k');
  await page.waitForSelector('#played[data-listened-ms]', { timeout: 10_000 });
  const listened = Number(await page.getAttribute('#played', 'data-listened-ms'));
  result.played_ms = listened;
  check('the playback is recorded with what was listened', listened >= 1000 && listened <= 10_000, `${listened} ms`);
  await page.waitForSelector('#audit tr[data-action="PLAYED"]', { timeout: 10_000 });
  check('the playback shows in the audit', true);

  // Decide with the keyboard: a (approve) → the override reason (blocking findings) → Esc → a → Enter.
  await page.focus('#review-title');
  await page.keyboard.press('a');
  const focused = await page.evaluate(() => document.activeElement?.id);
  check('a selects approve and asks for the override reason', focused === (input.needs_override ? 'override-reason' : 'decision-submit') && await page.isChecked('#decision-approve'), focused);
  if (input.needs_override) {
    // While typing, the shortcuts stay quiet ("a", "r", "d", "k" are in the text).
    await page.keyboard.type('Escuchado completo: el cliente acepta y repite su DNI; la grabación tiene una pausa por espera.');
    check('shortcuts do not fire while typing', await page.isChecked('#decision-approve') && (await page.inputValue('#override-reason')).startsWith('Escuchado'));
    await page.keyboard.press('Escape');
    await page.keyboard.press('a');
    check('a again moves to the confirm button', await page.evaluate(() => document.activeElement?.id) === 'decision-submit');
  }
  await page.keyboard.press('Enter');
  await page.waitForSelector('#decided[data-status="APPROVED"]', { timeout: 15_000 });
  check('the decision is made with the keyboard: the screen shows APPROVED', true);
  await page.waitForSelector('#audit tr[data-action="APPROVED"]', { timeout: 10_000 });
  await shot(page, '04-review-approved');

  // A fresh load of the review screen (read only now): navigation start to interactive.
  const samples = [];
  for (let i = 0; i < 3; i += 1) {
    await page.reload();
    await ready(page, 'review');
    samples.push(await page.evaluate(() => performance.getEntriesByName('console:review:ready')[0]?.startTime ?? null));
  }
  samples.sort((a, b) => a - b);
  result.review_load_to_interactive_ms = Math.round(samples[1]);
  result.review_load_samples_ms = samples.map(Math.round);
  console.error(`review screen: claim → interactive ${result.review_claim_to_interactive_ms} ms; fresh load → interactive ${samples.map(Math.round).join(', ')} ms (median ${result.review_load_to_interactive_ms})`);
  check('the review screen is interactive within 1 s of its load (median of 3)', result.review_load_to_interactive_ms < 1000, `${result.review_load_to_interactive_ms} ms`);

  // A stale decision: the next pre-sale is claimed and, while its screen is open, decided in
  // another tab (the API called directly with the same session); approving here is a 409 and
  // the screen shows what changed.
  await page.goto(`${input.console_url}#/queue`);
  await ready(page, 'queue');
  await page.click('#claim-next');
  await ready(page, 'review');
  const second = await page.getAttribute('main', 'data-presale');
  check('the next claim is the next pre-sale', second === input.second_presale_id, second);
  const elsewhere = await page.evaluate(async (id) => {
    const { token } = JSON.parse(sessionStorage.getItem('console.session'));
    const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
    const view = await (await fetch(`/presales/${id}/review-view`, { headers })).json();
    const body = { decision: 'return', version: view.presale.version, reasons: ['ADDRESS'], comment: 'Decidida en otra pestaña' };
    return (await fetch(`/presales/${id}/review`, { method: 'POST', headers, body: JSON.stringify(body) })).status;
  }, second);
  check('decided in another tab', elsewhere === 200, elsewhere);
  // r opens the rejection reasons; Space ticks one (it does not play the audio there).
  await page.focus('#review-title');
  await page.keyboard.press('r');
  const reasonFocus = await page.evaluate(() => document.activeElement?.name);
  await page.keyboard.press(' ');
  const ticked = await page.evaluate(() => document.activeElement?.checked);
  const paused = await page.evaluate(() => document.querySelector('#player').paused);
  check('r moves to the rejection reasons and Space ticks one', reasonFocus === 'reason-reject' && ticked && paused, { reasonFocus, ticked, paused });
  await page.keyboard.press('a');
  if (await page.evaluate(() => document.activeElement?.id) === 'override-reason') {
    await page.keyboard.type('Revisada');
    await page.keyboard.press('Escape');
    await page.keyboard.press('a');
  }
  await page.keyboard.press('Enter');
  await page.waitForSelector('#stale', { timeout: 10_000 });
  const now = await page.textContent('#stale-status');
  check('a stale decision (409) shows what changed', now.includes(input.returned_label), now);
  await page.waitForSelector('#audit tr[data-action="RETURNED"]', { timeout: 10_000 });
  check('and the screen says what is now (status, audit)', (await page.getAttribute('#presale-status', 'data-status')) === 'NEEDS_CORRECTION');
  await axe(page, 'review-stale');
  await shot(page, '05-review-stale');
  // The same screen in English.
  await page.click('#lang');
  await ready(page, 'review');
  const title = await page.textContent('#review-title');
  check('the review screen in English', title.startsWith('Pre-sale review') && (await page.getAttribute('html', 'lang')) === 'en', title);
  await shot(page, '05-review-en');
  await page.click('#lang');
  await context.close();
}

// ----- agent -------------------------------------------------------------------------------
async function agent(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  watch(page, 'agent');
  await signIn(page, { role: 'agent', sub: input.agent, clients: input.client });
  await ready(page, 'home');
  const links = await page.$$eval('#nav a', (as) => as.map((a) => a.getAttribute('href')));
  check('an agent is offered no review or supervision screen', !links.some((l) => l.includes('queue') || l.includes('review') || l.includes('supervisor')), links);
  await axe(page, 'agent-home');
  await shot(page, '06-agent');
  // Forced: the review screen's URL by hand. The API refuses; its detail is shown.
  await page.goto(`${input.console_url}#/review/${input.presale_id}`);
  await page.waitForSelector('#problem:not([hidden]) .problem-detail', { timeout: 10_000 });
  const status = await page.getAttribute('#problem .problem-detail', 'data-status');
  const detail = await page.textContent('#problem .problem-detail');
  check("forced onto a review screen, the agent sees the API's 403 detail", status === '403' && detail.trim().length > 0, `${status}: ${detail}`);
  check('and no decision form', (await page.$('#decision-form')) === null);
  await axe(page, 'agent-forbidden');
  await shot(page, '07-agent-forbidden');
  await context.close();
}

// ----- supervisor --------------------------------------------------------------------------
async function supervisor(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1000 }, acceptDownloads: true });
  const page = await context.newPage();
  watch(page, 'supervisor');
  await signIn(page, { role: 'supervisor', sub: input.supervisor, clients: input.client });
  await ready(page, 'supervisor');
  const { campaign, kpi_from: from, kpi_to: to, kpi_expected: expected } = input;
  await page.fill('#sup-campaign', campaign);
  await page.fill('#sup-from', from);
  await page.fill('#sup-to', to);
  await page.fill('#sup-day', input.metrics_day);
  await page.click('#sup-show');
  await page.waitForSelector('#sup-results[data-state="ready"]', { timeout: 20_000 });
  const problems = await page.$eval('#problem', (p) => (p.hidden ? '' : p.textContent));
  check('the supervisor screen loads without a problem', !problems, problems);
  // Every chart's bar of each day carries the API's value; the drawn bar exists where it is not null.
  const seen = await page.$$eval('figure[data-kpi] g.datum', (gs) => gs.map((g) => ({
    kpi: g.closest('figure').dataset.kpi.replace(/^kpi-/, ''), day: g.dataset.day, value: g.dataset.value, bar: g.querySelector('rect.bar') !== null,
  })));
  let compared = 0;
  for (const [day, rates] of Object.entries(expected)) {
    for (const [kpi, value] of Object.entries(rates)) {
      const point = seen.find((p) => p.kpi === kpi && p.day === day);
      const want = value ?? '';
      check(`chart ${kpi} shows ${day} = ${value}`, point && point.value === want && point.bar === (value !== null), point);
      compared += 1;
    }
  }
  result.kpi_points_compared = compared;
  // The accessible fallback has the same figures.
  const tableRows = await page.$$eval('figure[data-kpi] tbody tr', (rows) => rows.length);
  check('each chart has its table', tableRows === seen.length, `${tableRows} rows for ${seen.length} points`);
  const queueSize = await page.getAttribute(`#queue-size-${campaign}`, 'data-value');
  check('the queue size of the campaign is shown', queueSize !== null && queueSize === String(input.queue_size), queueSize);
  const byAge = await page.$$eval('table.queue-ages tbody td', (cells) => cells.reduce((sum, c) => sum + Number(c.textContent), 0));
  check('the queue by age and risk adds up to its size', byAge === input.queue_size, byAge);
  const reviewed = await page.getAttribute(`#metrics-reviewed-${campaign}`, 'data-value');
  check("the validators' metrics of the day are shown", reviewed === String(input.reviewed_today), reviewed);
  // The CSV is the API's own.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(`#csv-${campaign}`)]);
  const csvPath = join(SHOTS, 'kpis.csv');
  await download.saveAs(csvPath);
  const csv = readFileSync(csvPath, 'utf8');
  check('the CSV download is the report (header and the day)', /contact_rate/.test(csv.split('\n')[0]) && Object.keys(expected).every((d) => csv.includes(d)), csv.split('\n')[0]);
  await axe(page, 'supervisor');
  await shot(page, '08-supervisor');
  await context.close();
}

// ----- OIDC: authorization code + PKCE, against a stand-in identity provider ------------------
// config.json is answered as on AWS (mode oidc); the IdP's authorize and token endpoints are
// played by this script (on the console's origin, so the CSP's connect-src holds): it checks
// the PKCE pair (S256 of the verifier = the challenge), the state and the redirect URI, and
// issues a token the local gateway accepts (minted by the stack's dev route).
async function oidc(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  watch(page, 'oidc');
  const origin = consoleOrigin;
  const seen = {};
  await page.route(`${origin}/console/config.json`, (route) => route.fulfill({
    contentType: 'application/json',
    body: JSON.stringify({ auth: { mode: 'oidc', issuer: 'https://idp.example.test', authorize_url: `${origin}/_idp/authorize`, token_url: `${origin}/_idp/token`, client_id: 'console-test', scopes: 'openid profile', redirect_path: '/console' }, api_base: '' }),
  }));
  await page.route(`${origin}/_idp/authorize**`, (route) => {
    const url = new URL(route.request().url());
    Object.assign(seen, Object.fromEntries(url.searchParams));
    const back = new URL(seen.redirect_uri);
    back.searchParams.set('code', 'code-123');
    back.searchParams.set('state', seen.state);
    return route.fulfill({ status: 302, headers: { Location: back.toString() } });
  });
  await page.route(`${origin}/_idp/token`, async (route) => {
    const form = new URLSearchParams(route.request().postData() || '');
    const { createHash } = await import('node:crypto');
    const challenge = createHash('sha256').update(form.get('code_verifier') || '').digest('base64url');
    seen.exchange = { grant_type: form.get('grant_type'), code: form.get('code'), client_id: form.get('client_id'), redirect_uri: form.get('redirect_uri'), pkce_ok: challenge === seen.code_challenge };
    const mint = async (role, sub) => (await (await fetch(`${origin}/_local/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ role, sub, clients: [input.client] }),
    })).json()).token;
    // The access token is the API's; an ID token of someone else would show if it were used.
    const access = await mint('validator', input.validator);
    const id = await mint('agent', 'id-token-only');
    return route.fulfill({ contentType: 'application/json', body: JSON.stringify({ id_token: id, access_token: access, token_type: 'Bearer', expires_in: 3600 }) });
  });
  await page.goto(input.console_url);
  await ready(page, 'signin');
  await page.click('#oidc-signin');
  await ready(page, 'queue');
  check('OIDC: the authorization request asks for a code with PKCE (S256) and a state', seen.response_type === 'code' && seen.code_challenge_method === 'S256' && seen.code_challenge?.length >= 43 && seen.state && seen.client_id === 'console-test', seen);
  check('OIDC: the code is exchanged with the verifier of that challenge, for the same redirect URI', seen.exchange?.pkce_ok && seen.exchange.grant_type === 'authorization_code' && seen.exchange.code === 'code-123' && seen.exchange.redirect_uri === `${origin}/console`, seen.exchange);
  const who = await page.textContent('#who');
  check('OIDC: signed in as the token says, the code gone from the address bar', who.includes(input.validator) && !page.url().includes('code='), `${who} at ${page.url()}`);
  await page.goto(`${input.console_url}#/review/${input.presale_id}`);
  await ready(page, 'review');
  check('OIDC: the token goes to the API (the approved pre-sale reads back)', (await page.getAttribute('#presale-status', 'data-status')) === 'APPROVED');
  await context.close();
}

main()
  .catch((error) => {
    result.failures.push(`the script failed: ${error.stack || error.message}`);
    console.error(error);
  })
  .finally(() => {
    result.ok = result.failures.length === 0;
    const passed = result.checks.filter((c) => c.ok).length;
    console.log(`console browser test: ${passed} of ${result.checks.length} checks passed`);
    console.log(`RESULT ${JSON.stringify(result)}`);
    process.exit(result.ok ? 0 : 1);
  });
