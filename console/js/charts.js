// Hand-drawn SVG charts: one bar per day, the value written over it, and the same figures in a
// table underneath (the accessible fallback, and what a screen reader reads).

import { h, s } from './dom.js';
import { t } from './i18n.js';

const W = 380;
const H = 190;
const PAD = { top: 18, right: 8, bottom: 28, left: 42 };

/**
 * barChart({id, title, points: [{label, value, raw, display, basis}], axis: v → text}) → <figure>.
 * `value` is a number or null (no data: no bar, "no data" in the table).
 */
export function barChart({ id, title, points, axis }) {
  const values = points.map((p) => p.value).filter((v) => v !== null && Number.isFinite(v));
  const max = Math.max(...values, 0) || 1;
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(points.length, 1);
  const barW = Math.max(2, Math.min(48, slot * 0.6));
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  const titleId = `${id}-title`;
  const summary = points.map((p) => `${p.label} ${p.display}`).join('; ');
  const svg = s('svg', {
    class: 'chart', id, viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-labelledby': titleId, 'aria-describedby': `${id}-desc`,
  });
  svg.append(s('title', { id: `${id}-svgtitle` }, title), s('desc', { id: `${id}-desc` }, t('kpi.chart.label', { kpi: title, points: summary })));
  for (const fraction of [0, 0.5, 1]) {
    const yy = y(max * fraction);
    svg.append(
      s('line', { class: fraction === 0 ? 'axis' : 'grid-line', x1: PAD.left, x2: W - PAD.right, y1: yy, y2: yy }),
      s('text', { x: PAD.left - 4, y: yy + 4, 'text-anchor': 'end' }, axis(max * fraction)));
  }
  points.forEach((p, i) => {
    const cx = PAD.left + slot * i + slot / 2;
    const group = s('g', { class: 'datum', dataset: { day: p.label, value: p.raw ?? '' } });
    if (p.value !== null && Number.isFinite(p.value)) {
      const top = y(p.value);
      group.append(
        s('rect', { class: 'bar', x: (cx - barW / 2).toFixed(1), y: top.toFixed(1), width: barW.toFixed(1), height: Math.max(0, PAD.top + plotH - top).toFixed(1) },
          s('title', {}, `${p.label}: ${p.display}`)),
        s('text', { x: cx.toFixed(1), y: (top - 4).toFixed(1), 'text-anchor': 'middle', class: 'value' }, p.display));
    } else {
      group.append(s('text', { x: cx.toFixed(1), y: (PAD.top + plotH - 4).toFixed(1), 'text-anchor': 'middle', class: 'nodata' }, p.display));
    }
    // Label every day while they fit, else about eight of them.
    const every = Math.ceil(points.length / 8);
    if (i % every === 0) group.append(s('text', { x: cx.toFixed(1), y: H - 10, 'text-anchor': 'middle' }, p.label.slice(5)));
    svg.append(group);
  });
  return h('figure', { class: 'card', 'aria-labelledby': titleId, dataset: { kpi: id } },
    h('figcaption', { id: titleId }, title),
    svg,
    h('details', {},
      h('summary', {}, t('sup.table')),
      h('table', {},
        h('caption', { class: 'visually-hidden' }, title),
        h('thead', {}, h('tr', {},
          h('th', { scope: 'col' }, t('sup.col.day')),
          h('th', { scope: 'col', class: 'num' }, t('sup.col.value')),
          h('th', { scope: 'col', class: 'num' }, t('sup.col.basis')))),
        h('tbody', {}, points.map((p) => h('tr', { dataset: { day: p.label, value: p.raw ?? '' } },
          h('th', { scope: 'row' }, p.label),
          h('td', { class: 'num' }, p.display),
          h('td', { class: 'num' }, p.basis || '')))))));
}
