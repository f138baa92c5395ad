// Dependency-free SVG charts for `bench report`: horizontal bars, grouped vertical bars (in one or more
// panels with their own axes) and lines. Fixed widths, light background, one font stack, every text
// escaped, every coordinate a finite number rounded to 0.01 — the same input gives the same bytes.

export const palette = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#7F7F7F', '#332288'];
const FONT = "'DejaVu Sans', 'Helvetica Neue', Helvetica, Arial, sans-serif";
const INK = '#222222';
const MUTED = '#666666';
const GRID = '#e3e3e3';
const WIDTH = 960;

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A coordinate or length: finite, rounded to 0.01, no trailing zeros. */
export function num(v: number): string {
  if (!Number.isFinite(v)) throw new Error(`svg: non-finite number ${v}`);
  const r = Math.round(v * 100) / 100;
  return String(Object.is(r, -0) ? 0 : r);
}

/** A value for a label: 3 significant digits below 100, whole numbers above. */
export function formatValue(v: number): string {
  if (!Number.isFinite(v)) return '—';
  const a = Math.abs(v);
  if (a >= 100) return String(Math.round(v));
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  return v === 0 ? '0' : String(Number(v.toPrecision(3)));
}

/** Round tick values from 0 up to at least `max`: steps of 1, 2, 2.5 or 5 × 10^k. */
export function niceTicks(max: number, target = 5): number[] {
  if (!(max > 0) || !Number.isFinite(max)) return [0, 1];
  const raw = max / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let i = 0; i * step < max * (1 + 1e-9) || ticks.length < 2; i++) ticks.push(Number((i * step).toPrecision(12)));
  if (ticks[ticks.length - 1] < max) ticks.push(Number((ticks.length * step).toPrecision(12)));
  return ticks;
}

function tickLabel(v: number): string {
  if (Math.abs(v) >= 10_000) return `${Number((v / 1000).toPrecision(4))}k`;
  return String(Number(v.toPrecision(6)));
}

interface TextOptions {
  size?: number;
  anchor?: 'start' | 'middle' | 'end';
  weight?: 'normal' | 'bold';
  fill?: string;
  rotate?: number;
  /** A white outline behind the glyphs, so the text stays legible over grid and reference lines. */
  halo?: boolean;
}

export function text(x: number, y: number, s: string, o: TextOptions = {}): string {
  const attrs = [`x="${num(x)}"`, `y="${num(y)}"`, `font-size="${o.size ?? 13}"`];
  if (o.anchor && o.anchor !== 'start') attrs.push(`text-anchor="${o.anchor}"`);
  if (o.weight === 'bold') attrs.push('font-weight="bold"');
  attrs.push(`fill="${o.fill ?? INK}"`);
  if (o.rotate) attrs.push(`transform="rotate(${num(o.rotate)} ${num(x)} ${num(y)})"`);
  if (o.halo) attrs.push('stroke="#ffffff" stroke-width="3" stroke-linejoin="round" paint-order="stroke"');
  return `<text ${attrs.join(' ')}>${escapeXml(s)}</text>`;
}

function rect(x: number, y: number, w: number, h: number, fill: string, extra = ''): string {
  return `<rect x="${num(x)}" y="${num(y)}" width="${num(Math.max(0, w))}" height="${num(Math.max(0, h))}" fill="${fill}"${extra}/>`;
}

function line(x1: number, y1: number, x2: number, y2: number, stroke: string, extra = ''): string {
  return `<line x1="${num(x1)}" y1="${num(y1)}" x2="${num(x2)}" y2="${num(y2)}" stroke="${stroke}"${extra}/>`;
}

/** Approximate rendered width of `s` at `size` px (for layout only). */
function textWidth(s: string, size = 13): number {
  return s.length * size * 0.6;
}

function document(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${num(width)}" height="${num(height)}" viewBox="0 0 ${num(width)} ${num(height)}" font-family="${escapeXml(FONT)}">`,
    `<title>${escapeXml(title)}</title>`,
    rect(0, 0, width, height, '#ffffff'),
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

/** Title, subtitle lines and a legend row; returns the SVG and the y where the plot may start. */
function heading(title: string, subtitle: readonly string[], legend: readonly { name: string; color: string }[]): { svg: string[]; bottom: number } {
  const svg = [text(24, 34, title, { size: 18, weight: 'bold' })];
  let y = 34;
  for (const s of subtitle) svg.push(text(24, (y += 20), s, { size: 12, fill: MUTED }));
  if (legend.length) {
    y += 26;
    let x = 24;
    for (const { name, color } of legend) {
      if (x + 22 + textWidth(name, 12) > WIDTH - 24) {
        x = 24;
        y += 20;
      }
      svg.push(rect(x, y - 11, 14, 14, color), text(x + 20, y + 1, name, { size: 12 }));
      x += 20 + textWidth(name, 12) + 22;
    }
  }
  return { svg, bottom: y + 14 };
}

// ---------------------------------------------------------------------------------------------------

export interface HBar {
  label: string;
  value: number;
  /** Legend entry (and color) of the bar; bars of one group share a color. */
  group?: string;
  /** Text right of the bar (default: the value). */
  valueLabel?: string;
}

export interface HBarChartSpec {
  title: string;
  subtitle?: string[];
  xLabel: string;
  bars: HBar[];
  /** A dashed vertical line, e.g. 100 % of the ceiling. */
  reference?: { value: number; label: string };
  /** Axis maximum (default: from the data and the reference). */
  max?: number;
}

/** One bar per row, labels on the left, colored by group. */
export function horizontalBarChart(c: HBarChartSpec): string {
  const groups = [...new Set(c.bars.map((b) => b.group ?? ''))];
  const color = (g: string | undefined) => palette[groups.indexOf(g ?? '') % palette.length];
  const legend = groups.length > 1 || groups[0] !== '' ? groups.map((g) => ({ name: g || 'other', color: color(g) })) : [];
  const head = heading(c.title, c.subtitle ?? [], legend);
  const rowH = 22;
  const labelW = Math.min(430, Math.max(120, ...c.bars.map((b) => textWidth(b.label, 12))) + 12);
  const left = 24 + labelW;
  const valueW = Math.max(40, ...c.bars.map((b) => textWidth(b.valueLabel ?? formatValue(b.value), 11)));
  const right = WIDTH - 24 - valueW - 8;
  const top = head.bottom + 20;
  const plotH = Math.max(1, c.bars.length) * rowH;
  const height = top + plotH + 56;
  const finite = c.bars.map((b) => b.value).filter(Number.isFinite);
  const ticks = niceTicks(c.max ?? Math.max(c.reference?.value ?? 0, ...finite, 0));
  const max = ticks[ticks.length - 1];
  const xOf = (v: number) => left + ((right - left) * Math.max(0, Math.min(v, max))) / max;
  const body = [...head.svg];
  for (const t of ticks) body.push(line(xOf(t), top, xOf(t), top + plotH, GRID), text(xOf(t), top + plotH + 18, tickLabel(t), { size: 12, anchor: 'middle', fill: MUTED }));
  // The reference line under the bars and their labels.
  if (c.reference) {
    const x = xOf(c.reference.value);
    body.push(line(x, top - 6, x, top + plotH, '#C0392B', ' stroke-width="1.5" stroke-dasharray="5 4"'), text(x, top - 10, c.reference.label, { size: 11, anchor: 'middle', fill: '#C0392B' }));
  }
  c.bars.forEach((b, i) => {
    const y = top + i * rowH;
    body.push(text(left - 8, y + rowH / 2 + 4, b.label, { size: 12, anchor: 'end' }));
    if (Number.isFinite(b.value)) {
      body.push(rect(left, y + 3, xOf(b.value) - left, rowH - 6, color(b.group)));
      body.push(text(xOf(b.value) + 5, y + rowH / 2 + 4, b.valueLabel ?? formatValue(b.value), { size: 11, fill: MUTED, halo: true }));
    } else body.push(text(left + 5, y + rowH / 2 + 4, 'n/a', { size: 11, fill: MUTED }));
  });
  body.push(line(left, top, left, top + plotH, INK), line(left, top + plotH, right, top + plotH, INK));
  body.push(text((left + right) / 2, top + plotH + 42, c.xLabel, { size: 13, anchor: 'middle' }));
  return document(WIDTH, height, c.title, body);
}

// ---------------------------------------------------------------------------------------------------

export interface BarPanel {
  title: string;
  axisLabel: string;
  categories: string[];
  /** values[series][category]; null: no bar. */
  values: (number | null)[][];
  /** Lines of text under each category (e.g. ratios). */
  notes?: string[][];
}

export interface GroupedBarChartSpec {
  title: string;
  subtitle?: string[];
  series: string[];
  panels: BarPanel[];
}

/** Vertical bars grouped by category, one color per series, in side-by-side panels with own axes. */
export function groupedBarChart(c: GroupedBarChartSpec): string {
  const legend = c.series.map((name, i) => ({ name, color: palette[i % palette.length] }));
  const head = heading(c.title, c.subtitle ?? [], legend);
  const noteLines = Math.max(0, ...c.panels.flatMap((p) => (p.notes ?? []).map((n) => n.length)));
  const top = head.bottom + 44;
  const plotH = 300;
  const height = top + plotH + 40 + noteLines * 16 + 20;
  const gap = 40;
  const panelW = (WIDTH - 24 - gap * (c.panels.length - 1) - 24) / c.panels.length;
  const body = [...head.svg];
  c.panels.forEach((p, pi) => {
    const x0 = 24 + pi * (panelW + gap);
    const left = x0 + 64;
    const right = x0 + panelW;
    const finite = p.values.flat().filter((v): v is number => v !== null && Number.isFinite(v));
    const ticks = niceTicks(Math.max(0, ...finite) * 1.12);
    const max = ticks[ticks.length - 1];
    const yOf = (v: number) => top + plotH - (plotH * Math.max(0, Math.min(v, max))) / max;
    body.push(text(x0, top - 22, p.title, { size: 14, weight: 'bold' }));
    for (const t of ticks) body.push(line(left, yOf(t), right, yOf(t), GRID), text(left - 6, yOf(t) + 4, tickLabel(t), { size: 12, anchor: 'end', fill: MUTED }));
    body.push(text(x0 + 14, top + plotH / 2, p.axisLabel, { size: 12, anchor: 'middle', rotate: -90 }));
    const groupW = (right - left) / Math.max(1, p.categories.length);
    const barW = Math.min(64, (groupW * 0.8) / Math.max(1, c.series.length));
    p.categories.forEach((cat, ci) => {
      const gx = left + ci * groupW + (groupW - barW * c.series.length) / 2;
      c.series.forEach((_, si) => {
        const v = p.values[si]?.[ci];
        if (v === null || v === undefined || !Number.isFinite(v)) return;
        const bx = gx + si * barW;
        body.push(rect(bx + 2, yOf(v), barW - 4, top + plotH - yOf(v), palette[si % palette.length]));
        body.push(text(bx + barW / 2, yOf(v) - 5, formatValue(v), { size: 11, anchor: 'middle', halo: true }));
      });
      const cx = left + (ci + 0.5) * groupW;
      body.push(text(cx, top + plotH + 20, cat, { size: 13, anchor: 'middle' }));
      (p.notes?.[ci] ?? []).forEach((n, k) => body.push(text(cx, top + plotH + 40 + k * 16, n, { size: 11, anchor: 'middle', fill: MUTED })));
    });
    body.push(line(left, top, left, top + plotH, INK), line(left, top + plotH, right, top + plotH, INK));
  });
  return document(WIDTH, height, c.title, body);
}

// ---------------------------------------------------------------------------------------------------

export interface LineSeries {
  name: string;
  points: { x: number; y: number }[];
}

export interface LineChartSpec {
  title: string;
  subtitle?: string[];
  xLabel: string;
  yLabel: string;
  /** 'log2' spaces 1, 2, 4, 8 … evenly (x must be > 0). */
  xScale: 'linear' | 'log2';
  series: LineSeries[];
  /** Write each point's value next to it. */
  labelPoints?: boolean;
}

/** Lines with point markers; x ticks at the data's x values, y from 0. */
export function lineChart(c: LineChartSpec): string {
  const legend = c.series.map((s, i) => ({ name: s.name, color: palette[i % palette.length] }));
  const head = heading(c.title, c.subtitle ?? [], legend);
  const top = head.bottom + 24;
  const plotH = 320;
  const height = top + plotH + 60;
  const left = 24 + 70;
  const right = WIDTH - 40;
  const points = c.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (c.xScale === 'linear' || p.x > 0));
  const tx = (x: number) => (c.xScale === 'log2' ? Math.log2(x) : x);
  const xs = [...new Set(points.map((p) => p.x))].sort((a, b) => a - b);
  const lo = xs.length ? tx(xs[0]) : 0;
  const hi = xs.length > 1 ? tx(xs[xs.length - 1]) : lo + 1;
  const pad = (hi - lo) * 0.05;
  const xOf = (x: number) => left + ((right - left) * (tx(x) - lo + pad)) / (hi - lo + 2 * pad);
  const ticks = niceTicks(Math.max(0, ...points.map((p) => p.y)) * 1.08);
  const max = ticks[ticks.length - 1];
  const yOf = (y: number) => top + plotH - (plotH * Math.max(0, Math.min(y, max))) / max;
  const body = [...head.svg];
  for (const t of ticks) body.push(line(left, yOf(t), right, yOf(t), GRID), text(left - 6, yOf(t) + 4, tickLabel(t), { size: 12, anchor: 'end', fill: MUTED }));
  for (const x of xs) body.push(line(xOf(x), top + plotH, xOf(x), top + plotH + 5, INK), text(xOf(x), top + plotH + 20, tickLabel(x), { size: 12, anchor: 'middle', fill: MUTED }));
  body.push(line(left, top, left, top + plotH, INK), line(left, top + plotH, right, top + plotH, INK));
  c.series.forEach((s, i) => {
    const color = palette[i % palette.length];
    const ps = s.points.filter((p) => points.includes(p)).sort((a, b) => a.x - b.x);
    if (ps.length > 1) body.push(`<polyline fill="none" stroke="${color}" stroke-width="2.5" points="${ps.map((p) => `${num(xOf(p.x))},${num(yOf(p.y))}`).join(' ')}"/>`);
    for (const p of ps) {
      body.push(`<circle cx="${num(xOf(p.x))}" cy="${num(yOf(p.y))}" r="4" fill="${color}"/>`);
      if (c.labelPoints) body.push(text(xOf(p.x), yOf(p.y) - 9, formatValue(p.y), { size: 11, anchor: 'middle', fill: color, halo: true }));
    }
  });
  body.push(text((left + right) / 2, top + plotH + 44, c.xLabel, { size: 13, anchor: 'middle' }));
  body.push(text(34, top + plotH / 2, c.yLabel, { size: 12, anchor: 'middle', rotate: -90 }));
  return document(WIDTH, height, c.title, body);
}
