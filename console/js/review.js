// The review screen: everything a validator needs to decide on one pre-sale, on one page —
// customer and items, findings with their evidence, risk, the exact recording version with its
// waveform and the findings' marks, other versions, the decision form with the reason catalogs,
// keyboard shortcuts, the lease (shown and renewed), and the audit trail with its verification.

import { h, clear } from './dom.js';
import { t, has, fmtMoney, fmtDateTime, fmtTime, fmtClock, fmtPercent, fmtNumber } from './i18n.js';
import { get, post, api, ApiProblem, uuid, parseInstant } from './api.js';
import { session } from './auth.js';
import { showProblem, notify, clearProblem } from './app.js';
import { waveform, seek, markLabel } from './waveform.js';
import { riskClass } from './queue.js';

const RENEW_EVERY_MS = 60_000;
const TYPING = new Set(['text', 'search', 'email', 'number', 'date', 'password', 'tel', 'url']);

/** Whether a key event comes from a field the user types in (shortcuts stay quiet there). */
function typing(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  if (target.tagName === 'TEXTAREA' || target.tagName === 'SELECT') return true;
  return target.tagName === 'INPUT' && TYPING.has((target.type || 'text').toLowerCase());
}

function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

function evidenceValue(value) {
  if (value === null || value === undefined) return t('common.none');
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

function address(a) {
  if (!a) return '';
  return [a.line1, a.line2, a.district, a.province, a.region, a.postal_code, a.country].filter(Boolean).join(', ');
}

/** Marks of a finding, by its code (LONG_SILENCE → silence, LOW_CUSTOMER_TALK → customer_quiet). */
const MARK_OF_FINDING = { LONG_SILENCE: 'silence', LOW_CUSTOMER_TALK: 'customer_quiet' };

export async function reviewView(root, id) {
  const who = session();
  const timers = [];
  const cleanups = [];
  let view = await get(`/presales/${encodeURIComponent(id)}/review-view`);
  let presale = view.presale;
  let leaseUntil = parseInstant(view.lease_until || presale.claim?.lease_until);
  const mine = () => presale.status === 'READY_FOR_REVIEW' && presale.claim?.validator_id === who.sub;
  let decided = false;

  // ----- head: who, what, risk, lease -------------------------------------------------------
  const leaseText = h('p', { class: 'lease', id: 'lease', role: 'timer', 'aria-live': 'off' });
  const statusText = h('span', { id: 'presale-status', dataset: { status: presale.status } }, t(`status.${presale.status}`));
  const versionText = h('span', { id: 'presale-version' }, String(presale.version));
  const tick = () => {
    if (decided) { leaseText.textContent = ''; return; }
    if (!leaseUntil || !mine()) { leaseText.textContent = t('review.lease.none'); leaseText.classList.remove('expiring'); return; }
    const left = leaseUntil - Date.now();
    if (left <= 0) { leaseText.textContent = t('review.lease.lost'); leaseText.classList.add('expiring'); return; }
    leaseText.textContent = t('review.lease', { time: fmtClock(left) });
    leaseText.classList.toggle('expiring', left < 60_000);
  };
  const renew = async () => {
    if (decided || !mine()) return;
    try {
      const renewed = await post(`/reviews/${encodeURIComponent(presale.id)}/renew`);
      const until = parseInstant(renewed?.lease_until);
      if (until) {
        if (renewed.renewed && (!leaseUntil || until > leaseUntil)) notify(t('review.lease.renewed', { time: fmtTime(until) }));
        leaseUntil = until;
      }
    } catch (error) {
      if (error instanceof ApiProblem && error.status === 409) leaseUntil = Date.now() - 1;
      showProblem(error);
    }
    tick();
  };
  timers.push(setInterval(tick, 1000), setInterval(renew, RENEW_EVERY_MS));
  const release = h('button', { type: 'button', class: 'secondary', id: 'release', hidden: !mine() }, t('review.release'));
  release.addEventListener('click', async () => {
    try {
      await post(`/reviews/${encodeURIComponent(presale.id)}/release`);
      decided = true;
      location.hash = '#/queue';
    } catch (error) { showProblem(error); }
  });

  const blocking = (presale.findings || []).filter((f) => f.severity === 'blocking');
  const head = h('section', { class: 'card', 'aria-labelledby': 'review-title' },
    h('div', { class: 'review-head' },
      h('h1', { id: 'review-title' }, `${t('review.title')} ${presale.call_id || ''}`),
      h('span', { class: `badge ${riskClass(presale.risk_score)}`, id: 'risk-score', dataset: { score: String(presale.risk_score ?? 0) } },
        `${t('review.risk')}: ${t('review.risk.value', { score: presale.risk_score ?? 0 })}`)),
    facts([
      ['ID', h('code', {}, presale.id)],
      [t('review.campaign'), presale.campaign_id],
      [t('review.agent'), presale.agent_id],
      [t('review.status'), statusText],
      [t('review.version'), versionText],
    ]),
    leaseText,
    release);

  // ----- customer and items ----------------------------------------------------------------
  const c = presale.customer || {};
  const customer = h('section', { class: 'card', 'aria-labelledby': 'customer-title' },
    h('h2', { id: 'customer-title' }, t('review.customer')),
    facts([
      [t('review.name'), c.full_name],
      [t('review.document'), c.document ? `${c.document.type} ${c.document.number}` : ''],
      [t('review.phone'), c.phone],
      [t('review.email'), c.email],
      [t('review.address'), address(c.address)],
      [t('review.notes'), presale.notes],
    ]));
  const items = h('section', { class: 'card', 'aria-labelledby': 'items-title' },
    h('h2', { id: 'items-title' }, t('review.items')),
    h('table', {},
      h('caption', { class: 'visually-hidden' }, t('review.items.caption')),
      h('thead', {}, h('tr', {},
        h('th', { scope: 'col' }, t('review.col.sku')),
        h('th', { scope: 'col' }, t('review.col.name')),
        h('th', { scope: 'col', class: 'num' }, t('review.col.qty')),
        h('th', { scope: 'col', class: 'num' }, t('review.col.unit')),
        h('th', { scope: 'col', class: 'num' }, t('review.col.line')))),
      h('tbody', {}, (presale.items || []).map((i) => h('tr', {},
        h('td', {}, i.sku), h('td', {}, i.name),
        h('td', { class: 'num' }, String(i.quantity)),
        h('td', { class: 'num' }, fmtMoney(i.unit_price)),
        h('td', { class: 'num' }, fmtMoney(i.line_total))))),
      h('tfoot', {}, h('tr', {},
        h('th', { scope: 'row', colspan: 4 }, t('review.total')),
        h('td', { class: 'num', id: 'presale-total' }, fmtMoney(presale.total))))));

  // ----- recording: audio, waveform, marks, versions ----------------------------------------
  const recording = view.recording;
  const audioFacts = recording?.audio || {};
  const durationMs = recording?.duration_ms ?? audioFacts.duration_ms ?? presale.recording?.duration_ms;
  const marks = recording?.marks || [];
  const blockingKinds = new Set(blocking.map((f) => MARK_OF_FINDING[f.code]).filter(Boolean));
  const recordingCard = h('section', { class: 'card player', 'aria-labelledby': 'recording-title' },
    h('h2', { id: 'recording-title' }, t('review.recording')));
  let audio = null;
  let wave = null;
  let playbackSession = null;
  const playedNote = h('p', { class: 'muted', id: 'played', 'aria-live': 'polite' });
  const sha256 = recording?.sha256 || presale.recording?.sha256;
  // The version in the player: the bound one, unless the validator picked another to compare.
  let playing = { sha256, versionId: recording?.version_id ?? null, bound: true };

  const sendPlayback = async (sessionState, { keepalive = false } = {}) => {
    const body = {
      playback_id: sessionState.id,
      started_at: sessionState.startedAt,
      listened_ms: Math.round(sessionState.listened * 1000),
    };
    if (sessionState.sha256) body.sha256 = sessionState.sha256; else if (sessionState.versionId) body.version_id = sessionState.versionId;
    if (keepalive) {
      // Leaving the screen: the request must outlive it.
      fetch(`/presales/${encodeURIComponent(presale.id)}/playbacks`, {
        method: 'POST', keepalive: true,
        headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${session()?.token}` },
        body: JSON.stringify(body),
      }).catch(() => {});
      return;
    }
    try {
      const recorded = await post(`/presales/${encodeURIComponent(presale.id)}/playbacks`, body);
      playedNote.textContent = t('review.played', { ms: fmtNumber(recorded?.listened_ms ?? body.listened_ms) });
      playedNote.dataset.playbackId = body.playback_id;
      playedNote.dataset.listenedMs = String(body.listened_ms);
      await refreshAudit();
    } catch (error) {
      showProblem(error);
    }
  };
  const closePlayback = (options) => {
    if (!playbackSession || !audio) return;
    const current = playbackSession;
    playbackSession = null;
    const delta = audio.currentTime - current.lastTime;
    if (delta > 0 && delta < 1.5) current.listened += delta;
    sendPlayback(current, options);
  };

  if (!recording && !presale.recording) {
    recordingCard.append(h('p', {}, t('review.recording.none')));
  } else {
    if (view.playback?.url) {
      audio = h('audio', { id: 'player', controls: true, preload: 'metadata', src: view.playback.url, 'aria-label': t('review.recording') });
      let refreshed = false;
      audio.addEventListener('error', async () => {
        // The presigned link lasts minutes: past it, ask for a fresh one once.
        if (refreshed) return;
        refreshed = true;
        try {
          const fresh = await get(`/presales/${encodeURIComponent(presale.id)}/review-view`);
          const url = playing.bound
            ? fresh.playback?.url
            : (fresh.versions || []).find((v) => v.sha256 === playing.sha256)?.playback_url;
          if (url) {
            const at = audio.currentTime;
            audio.src = url;
            audio.currentTime = at;
          }
        } catch (error) { showProblem(error); }
      });
      audio.addEventListener('play', () => {
        if (!playbackSession) {
          playbackSession = { id: uuid(), startedAt: new Date().toISOString(), listened: 0, lastTime: audio.currentTime, sha256: playing.sha256, versionId: playing.versionId };
        }
      });
      audio.addEventListener('timeupdate', () => {
        if (playbackSession && !audio.paused) {
          const delta = audio.currentTime - playbackSession.lastTime;
          if (delta > 0 && delta < 1.5) playbackSession.listened += delta;
          playbackSession.lastTime = audio.currentTime;
        }
        wave?.update();
      });
      audio.addEventListener('seeked', () => {
        if (playbackSession) playbackSession.lastTime = audio.currentTime;
        wave?.update();
      });
      audio.addEventListener('pause', () => closePlayback());
      audio.addEventListener('ended', () => closePlayback());
      const onHide = () => closePlayback({ keepalive: true });
      window.addEventListener('pagehide', onHide);
      cleanups.push(() => window.removeEventListener('pagehide', onHide));
      cleanups.push(() => { closePlayback({ keepalive: true }); audio.pause(); });
      recordingCard.append(audio);
    } else {
      recordingCard.append(h('p', { class: 'error-text' }, t('review.recording.nolink')));
    }
    if (recording?.peaks?.values?.length) {
      wave = waveform({ peaks: recording.peaks, marks, durationS: (durationMs || 0) / 1000, audio, blockingKinds });
      recordingCard.append(wave.svg);
    } else {
      recordingCard.append(h('p', { class: 'muted' }, t('review.wave.nopeaks')));
    }
    if (marks.length) {
      recordingCard.append(h('h3', { id: 'marks-title' }, t('review.marks')),
        h('ul', { class: 'marks', 'aria-labelledby': 'marks-title' }, marks.map((mark) => h('li', {},
          h('button', { type: 'button', class: 'secondary', dataset: { kind: mark.kind }, onclick: () => seek(audio, mark.start_s) }, markLabel(mark))))));
    }
    const talk = audioFacts.channel_talk_ms || [];
    recordingCard.append(playedNote,
      h('h3', {}, t('review.recording.facts')),
      facts([
        [t('review.recording.duration'), durationMs !== undefined ? h('span', { id: 'recording-duration', dataset: { ms: String(durationMs) } }, fmtClock(durationMs)) : ''],
        [t('review.recording.speech'), audioFacts.speech_ratio !== undefined ? fmtPercent(audioFacts.speech_ratio, 0) : ''],
        [t('review.recording.agent_talk'), talk.length > 1 ? fmtClock(talk[0]) : ''],
        [t('review.recording.customer_talk'), talk.length > 1 ? fmtClock(talk[1]) : ''],
        [t('review.recording.silence'), audioFacts.longest_silence_ms !== undefined ? fmtClock(audioFacts.longest_silence_ms) : ''],
        [t('review.recording.codec'), audioFacts.codec ? `${audioFacts.container || ''} ${audioFacts.codec} ${audioFacts.sample_rate || ''} Hz × ${audioFacts.channels || ''}` : ''],
        [t('review.recording.received'), recording?.received_at ? fmtDateTime(parseInstant(recording.received_at)) : ''],
        [t('review.recording.sha'), sha256 ? h('code', { id: 'recording-sha' }, sha256.slice(0, 16) + '…') : ''],
      ]));
    const versions = (view.versions || []);
    const others = versions.filter((v) => !v.bound);
    recordingCard.append(h('h3', { id: 'versions-title' }, t('review.versions')));
    if (versions.length) {
      const nowPlaying = h('p', { id: 'now-playing', class: 'muted', 'aria-live': 'polite' });
      const play = (v) => {
        if (!audio) return;
        // A listening session belongs to one version: close it before switching.
        closePlayback();
        audio.pause();
        const url = v.bound ? (view.playback?.url || v.playback_url) : v.playback_url;
        if (!url) return;
        playing = { sha256: v.sha256, versionId: v.version_id ?? null, bound: Boolean(v.bound) };
        audio.src = url;
        audio.dataset.sha256 = v.sha256 || '';
        nowPlaying.textContent = v.bound ? '' : t('review.versions.playing', { when: fmtDateTime(parseInstant(v.received_at)) });
        audio.focus();
      };
      recordingCard.append(h('ul', { id: 'versions', 'aria-labelledby': 'versions-title' }, versions.map((v) => h('li', { dataset: { sha256: v.sha256, bound: String(Boolean(v.bound)) } },
        `${fmtDateTime(parseInstant(v.received_at))} · ${v.duration_ms != null ? fmtClock(v.duration_ms) : t('common.none')} · ${fmtNumber(v.bytes || 0)} B · `,
        h('code', {}, String(v.sha256 || '').slice(0, 12)),
        v.bound ? ` ${t('review.versions.current')} ` : ' ',
        audio && (v.bound || v.playback_url)
          ? h('button', { type: 'button', class: 'link', dataset: { play: v.sha256 }, onclick: () => play(v) },
            v.bound ? t('review.versions.back') : t('review.versions.listen'))
          : null))), nowPlaying);
      if (!others.length) recordingCard.append(h('p', { class: 'muted' }, t('review.versions.none')));
    } else {
      recordingCard.append(h('p', { class: 'muted' }, view.other_versions ? t('review.versions.count', { count: view.other_versions }) : t('review.versions.none')));
    }
  }

  // ----- findings ---------------------------------------------------------------------------
  const findings = presale.findings || [];
  const findingsCard = h('section', { class: 'card', 'aria-labelledby': 'findings-title' },
    h('h2', { id: 'findings-title' }, t('review.findings')),
    findings.length
      ? h('ul', { class: 'findings', id: 'findings' }, findings.map((f) => {
        const kind = MARK_OF_FINDING[f.code];
        const mark = kind && marks.find((m) => m.kind === kind);
        const evidence = f.evidence && typeof f.evidence === 'object' ? Object.entries(f.evidence) : [];
        return h('li', { class: f.severity, dataset: { code: f.code, severity: f.severity } },
          h('p', {}, h('span', { class: `badge ${f.severity}` }, t(`review.finding.${f.severity}`)), ' ', h('strong', {}, has(`finding.${f.code}`) ? t(`finding.${f.code}`) : f.code), ' ', h('code', {}, f.code)),
          h('p', {}, f.message),
          evidence.length ? h('details', {}, h('summary', {}, t('review.finding.evidence')), facts(evidence.map(([k, v]) => [k, evidenceValue(v)]))) : null,
          mark && audio ? h('button', { type: 'button', class: 'link', onclick: () => seek(audio, mark.start_s) },
            t('review.finding.seek', { time: fmtClock(mark.start_s * 1000) })) : null);
      }))
      : h('p', {}, t('review.findings.none')));

  // ----- decision ---------------------------------------------------------------------------
  const reasons = view.reasons || { reject: [], return: [] };
  const radios = {};
  const decisionChoice = h('fieldset', {},
    h('legend', {}, t('review.decision.kind')),
    ['approve', 'reject', 'return'].map((kind) => {
      radios[kind] = h('input', { type: 'radio', name: 'decision', value: kind, id: `decision-${kind}` });
      return h('div', { class: 'choice' }, radios[kind], h('label', { for: `decision-${kind}` }, t(`review.decision.${kind}`), ' ', h('kbd', {}, { approve: 'a', reject: 'r', return: 'd' }[kind])));
    }));
  const reasonSets = {};
  for (const kind of ['reject', 'return']) {
    reasonSets[kind] = h('fieldset', { id: `reasons-${kind}`, hidden: true },
      h('legend', {}, t(`review.reasons.${kind}`)),
      (reasons[kind] || []).map((r) => h('div', { class: 'choice' },
        h('input', { type: 'checkbox', name: `reason-${kind}`, value: r.code, id: `reason-${kind}-${r.code}` }),
        h('label', { for: `reason-${kind}-${r.code}` }, `${r.label} (${r.code})`))));
  }
  const override = h('textarea', { id: 'override-reason', name: 'override_reason', 'aria-describedby': 'override-hint', maxlength: 1000 });
  const overrideField = h('div', { class: 'field', hidden: true },
    h('label', { for: 'override-reason' }, t('review.override')), override,
    h('p', { class: 'hint', id: 'override-hint' }, t('review.override.hint')));
  const comment = h('textarea', { id: 'decision-comment', name: 'comment', 'aria-describedby': 'comment-hint', maxlength: 1000 });
  const commentField = h('div', { class: 'field' },
    h('label', { for: 'decision-comment' }, t('review.comment')), comment,
    h('p', { class: 'hint', id: 'comment-hint' }, t('review.comment.hint')));
  const formError = h('p', { class: 'error-text', id: 'decision-error', 'aria-live': 'assertive' });
  const submit = h('button', { type: 'submit', id: 'decision-submit' }, t('review.submit'));
  const outcome = h('div', { id: 'decision-outcome', 'aria-live': 'polite' });
  const form = h('form', { id: 'decision-form', novalidate: true, 'aria-describedby': 'decision-error' },
    decisionChoice, reasonSets.reject, reasonSets.return, overrideField, commentField, formError, submit);
  const chosen = () => ['approve', 'reject', 'return'].find((k) => radios[k].checked);
  const sync = () => {
    const kind = chosen();
    reasonSets.reject.hidden = kind !== 'reject';
    reasonSets.return.hidden = kind !== 'return';
    overrideField.hidden = !(kind === 'approve' && blocking.length);
    override.required = !overrideField.hidden;
  };
  form.addEventListener('change', sync);
  const choose = (kind) => {
    radios[kind].checked = true;
    sync();
    formError.textContent = '';
    if (kind === 'approve') {
      if (blocking.length && !override.value.trim()) override.focus(); else submit.focus();
    } else {
      reasonSets[kind].querySelector('input')?.focus();
    }
  };
  const setEnabled = (enabled) => {
    for (const el of form.querySelectorAll('input, textarea, button')) el.disabled = !enabled;
  };

  const decisionCard = h('section', { class: 'card', 'aria-labelledby': 'decision-title' },
    h('h2', { id: 'decision-title' }, t('review.decision')), form, outcome);

  const showStale = (error, seenVersion, seenStatus) => {
    const now = error.problem.current || {};
    clear(outcome).append(h('div', { class: 'problem', id: 'stale' },
      h('p', {}, h('strong', {}, t('review.stale')), ' ', error.problem.detail || ''),
      h('table', {},
        h('caption', {}, t('review.stale.what')),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, t('review.stale.field'))), h('th', { scope: 'col' }, t('review.stale.seen')), h('th', { scope: 'col' }, t('review.stale.now')))),
        h('tbody', {},
          h('tr', {}, h('th', { scope: 'row' }, t('review.status')), h('td', {}, t(`status.${seenStatus}`)), h('td', { id: 'stale-status' }, now.status ? t(`status.${now.status}`) : t('common.none'))),
          h('tr', {}, h('th', { scope: 'row' }, t('review.version')), h('td', {}, String(seenVersion)), h('td', { id: 'stale-version' }, String(now.version ?? t('common.none')))),
          now.claimed_by !== undefined ? h('tr', {}, h('th', { scope: 'row' }, t('queue.col.claimed')), h('td', {}, who.sub), h('td', {}, now.claimed_by || t('common.none'))) : null,
          now.decided_by ? h('tr', {}, h('th', { scope: 'row' }, t('review.decision')), h('td', {}, t('common.none')), h('td', {}, `${now.decision || ''} · ${now.decided_by} · ${now.decided_at ? fmtDateTime(parseInstant(now.decided_at)) : ''}`)) : null)),
      h('button', { type: 'button', onclick: () => location.reload() }, t('review.stale.reload'))));
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearProblem();
    const kind = chosen();
    formError.textContent = '';
    if (!kind) { formError.textContent = t('review.decision.kind'); radios.approve.focus(); return; }
    const body = { decision: kind, version: presale.version };
    if (kind === 'approve') {
      if (blocking.length) {
        if (!override.value.trim()) { formError.textContent = t('review.need.override'); override.setAttribute('aria-invalid', 'true'); override.focus(); return; }
        body.override_reason = override.value.trim();
      }
    } else {
      const picked = [...reasonSets[kind].querySelectorAll('input:checked')].map((i) => i.value);
      if (!picked.length) { formError.textContent = t('review.need.reason'); reasonSets[kind].querySelector('input')?.focus(); return; }
      if (picked.includes('OTHER') && !comment.value.trim()) { formError.textContent = t('review.need.comment'); comment.focus(); return; }
      body.reasons = picked;
    }
    override.removeAttribute('aria-invalid');
    if (comment.value.trim()) body.comment = comment.value.trim();
    const seenVersion = presale.version;
    const seenStatus = presale.status;
    setEnabled(false);
    if (playbackSession) closePlayback();
    try {
      const result = await api('POST', `/presales/${encodeURIComponent(presale.id)}/review`, body, { idempotent: true });
      presale = result;
      decided = true;
      statusText.textContent = t(`status.${result.status}`);
      statusText.dataset.status = result.status;
      versionText.textContent = String(result.version);
      release.hidden = true;
      tick();
      const next = h('button', { type: 'button', id: 'claim-next-after' }, t('review.next'));
      next.addEventListener('click', () => { location.hash = '#/queue'; });
      clear(outcome).append(h('p', { class: 'notice', id: 'decided', dataset: { status: result.status } }, t('review.decided', { status: t(`status.${result.status}`) })), next);
      next.focus();
      await refreshAudit();
    } catch (error) {
      if (error instanceof ApiProblem && error.status === 409) {
        showStale(error, seenVersion, seenStatus);
        // The screen now says what is: the current status, no lease, the audit as it stands.
        const now = error.problem.current || {};
        if (now.status) {
          statusText.textContent = t(`status.${now.status}`);
          statusText.dataset.status = now.status;
        }
        if (now.version !== undefined) versionText.textContent = String(now.version);
        if (now.status && now.status !== 'READY_FOR_REVIEW') {
          decided = true;
          release.hidden = true;
          tick();
        }
        await refreshAudit();
      } else {
        setEnabled(true);
        showProblem(error);
      }
    }
  });
  if (!mine()) setEnabled(false);

  // ----- shortcuts --------------------------------------------------------------------------
  const shortcuts = h('section', { class: 'card shortcuts', 'aria-labelledby': 'shortcuts-title' },
    h('h2', { id: 'shortcuts-title' }, t('review.shortcuts')),
    h('ul', {},
      h('li', {}, h('kbd', {}, 'Espacio'), ' / ', h('kbd', {}, 'k'), ' ', t('review.shortcut.play')),
      h('li', {}, h('kbd', {}, 'j'), ' / ', h('kbd', {}, 'l'), ' ', t('review.shortcut.seek')),
      h('li', {}, h('kbd', {}, 'a'), ' ', t('review.shortcut.approve')),
      h('li', {}, h('kbd', {}, 'r'), ' ', t('review.shortcut.reject')),
      h('li', {}, h('kbd', {}, 'd'), ' ', t('review.shortcut.return'))),
    h('p', { class: 'hint' }, t('review.shortcut.note')));
  if (document.documentElement.lang === 'en') shortcuts.querySelector('kbd').textContent = 'Space';

  const onKey = (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (typing(event.target)) {
      if (event.key === 'Escape') event.target.blur();
      return;
    }
    const key = event.key.toLowerCase();
    // Space keeps its own meaning on controls (a button, a checkbox, a radio, the player).
    const onControl = event.target instanceof Element && ['BUTTON', 'A', 'AUDIO', 'SUMMARY', 'INPUT'].includes(event.target.tagName);
    if ((key === ' ' && !onControl) || key === 'k') {
      if (!audio) return;
      event.preventDefault();
      if (audio.paused) audio.play().catch(showProblem); else audio.pause();
    } else if (key === 'j' || key === 'l') {
      if (!audio) return;
      event.preventDefault();
      seek(audio, audio.currentTime + (key === 'j' ? -5 : 5));
    } else if (!decided && mine() && (key === 'a' || key === 'r' || key === 'd')) {
      event.preventDefault();
      choose({ a: 'approve', r: 'reject', d: 'return' }[key]);
    }
  };
  document.addEventListener('keydown', onKey);
  cleanups.push(() => document.removeEventListener('keydown', onKey));

  // ----- audit ------------------------------------------------------------------------------
  const auditBody = h('div', { id: 'audit' });
  async function refreshAudit() {
    try {
      const audit = await get(`/presales/${encodeURIComponent(presale.id)}/audit`);
      const v = audit.verification || {};
      clear(auditBody).append(
        h('p', { class: v.verified ? 'verified' : 'broken', id: 'audit-verification', dataset: { verified: String(Boolean(v.verified)) } },
          v.verified ? t('audit.verified') : t('audit.broken', { at: v.broken_at ?? '?' })),
        h('table', {},
          h('caption', { class: 'visually-hidden' }, t('audit.caption')),
          h('thead', {}, h('tr', {},
            h('th', { scope: 'col', class: 'num' }, t('audit.col.seq')),
            h('th', { scope: 'col' }, t('audit.col.at')),
            h('th', { scope: 'col' }, t('audit.col.actor')),
            h('th', { scope: 'col' }, t('audit.col.action')),
            h('th', { scope: 'col' }, t('audit.col.details')))),
          h('tbody', {}, (audit.records || []).map((r) => h('tr', { dataset: { action: r.action } },
            h('td', { class: 'num' }, r.note ? `${r.seq}.${r.note}` : String(r.seq)),
            h('td', {}, fmtDateTime(parseInstant(r.at))),
            h('td', {}, `${r.actor}${r.role ? ` (${r.role})` : ''}`),
            h('td', {}, r.action),
            h('td', {}, auditDetails(r)))))));
    } catch (error) {
      showProblem(error);
    }
  }
  const auditCard = h('section', { class: 'card', 'aria-labelledby': 'audit-title' },
    h('div', { class: 'review-head' },
      h('h2', { id: 'audit-title' }, t('audit.title')),
      h('button', { type: 'button', class: 'secondary', onclick: refreshAudit }, t('audit.refresh'))),
    auditBody);

  root.append(head,
    h('div', { class: 'grid' }, recordingCard, findingsCard),
    h('div', { class: 'grid' }, customer, items),
    h('div', { class: 'grid' }, decisionCard, shortcuts),
    auditCard);
  tick();
  await refreshAudit();
  if (mine()) renew();
  performance.mark('console:review:ready');
  root.dataset.presale = presale.id;
  head.querySelector('h1').setAttribute('tabindex', '-1');
  head.querySelector('h1').focus();

  return () => {
    for (const timer of timers) clearInterval(timer);
    for (const cleanup of cleanups) cleanup();
  };
}

function auditDetails(record) {
  const parts = [];
  if (record.from_status || record.to_status) parts.push(`${record.from_status || ''} → ${record.to_status || ''}`);
  if (record.reasons?.length) parts.push(record.reasons.join(', '));
  const d = record.details && typeof record.details === 'object' ? record.details : {};
  if (record.action === 'PLAYED') {
    parts.push(`${fmtNumber(d.listened_ms ?? 0)} ms · ${String(d.sha256 || d.version_id || '').slice(0, 12)} · ${d.started_at ? fmtDateTime(parseInstant(d.started_at)) : ''}`);
  } else {
    for (const [k, v] of Object.entries(d)) if (v !== null && v !== undefined && v !== '') parts.push(`${k}: ${evidenceValue(v)}`);
  }
  return parts.join(' · ');
}
