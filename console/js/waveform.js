// The recording's waveform, drawn as SVG from the peaks stored with the analysis at ingest (the
// browser never downloads the audio to compute it), with the findings' time marks over it.
// Clicking the waveform or a mark seeks the audio element.

import { s } from './dom.js';
import { t, fmtClock } from './i18n.js';

const W = 1000;
const H = 100;

export function markLabel(mark) {
  const kind = `review.mark.${mark.kind}`;
  const name = t(kind) === kind ? t('review.mark.other') : t(kind);
  return t('review.mark.button', { kind: name, from: fmtClock(mark.start_s * 1000), to: fmtClock(mark.end_s * 1000) });
}

/**
 * waveform({peaks, marks, durationS, audio, blockingKinds}) → {svg, update()}; `update()` moves
 * the play cursor to the audio's current time.
 */
export function waveform({ peaks, marks = [], durationS, audio, blockingKinds = new Set() }) {
  const values = peaks?.values || [];
  const step = peaks?.seconds_per_peak || (values.length ? durationS / values.length : 1);
  const total = durationS || values.length * step || 1;
  const x = (seconds) => Math.max(0, Math.min(W, (seconds / total) * W));

  // One path: the peaks' upper outline, then the lower one mirrored back.
  // Scaled to the loudest peak, so a quiet call still shows its shape.
  let loudest = 1;
  for (const v of values) if (v > loudest) loudest = v;
  let top = '';
  let bottom = '';
  values.forEach((v, i) => {
    const half = Math.max(0.5, (Math.min(loudest, v) / loudest) * (H / 2 - 4));
    const x0 = x(i * step).toFixed(1);
    const x1 = x((i + 1) * step).toFixed(1);
    top += `${i === 0 ? 'M' : 'L'}${x0},${(H / 2 - half).toFixed(1)}L${x1},${(H / 2 - half).toFixed(1)}`;
    bottom = `L${x1},${(H / 2 + half).toFixed(1)}L${x0},${(H / 2 + half).toFixed(1)}${bottom}`;
  });
  const svg = s('svg', {
    class: 'wave',
    id: 'waveform',
    viewBox: `0 0 ${W} ${H}`,
    preserveAspectRatio: 'none',
    role: 'img',
    'aria-label': t('review.wave.label'),
    dataset: { peaks: String(values.length), marks: String(marks.length) },
  });
  svg.append(s('title', {}, t('review.wave.label')));
  // Longest first, so that a shorter mark inside a longer one stays on top, clickable.
  const drawn = [...marks].sort((a, b) => (b.end_s - b.start_s) - (a.end_s - a.start_s));
  for (const mark of drawn) {
    const x0 = x(mark.start_s);
    const width = Math.max(2, x(mark.end_s) - x0);
    const rect = s('rect', {
      class: `mark${blockingKinds.has(mark.kind) ? ' blocking' : ''}`,
      x: x0.toFixed(1), y: 0, width: width.toFixed(1), height: H,
      dataset: { kind: mark.kind, start: String(mark.start_s), end: String(mark.end_s) },
    }, s('title', {}, markLabel(mark)));
    rect.addEventListener('click', (event) => {
      event.stopPropagation();
      seek(audio, mark.start_s);
    });
    svg.append(rect);
  }
  // The peaks over the marks (the marks tint the background), transparent to clicks.
  if (values.length) svg.append(s('path', { class: 'peak', d: `${top}${bottom}Z` }));
  const cursor = s('line', { class: 'cursor', x1: 0, x2: 0, y1: 0, y2: H });
  svg.append(cursor);
  svg.addEventListener('click', (event) => {
    const box = svg.getBoundingClientRect();
    if (!box.width) return;
    seek(audio, ((event.clientX - box.left) / box.width) * total);
  });
  const update = () => {
    const at = x(audio?.currentTime || 0).toFixed(1);
    cursor.setAttribute('x1', at);
    cursor.setAttribute('x2', at);
  };
  return { svg, update };
}

export function seek(audio, seconds) {
  if (!audio) return;
  const limit = Number.isFinite(audio.duration) ? audio.duration : seconds;
  audio.currentTime = Math.max(0, Math.min(limit, seconds));
}
