// The SVG chart module of `bench report`: well-formed XML, finite coordinates, escaped text, round
// ticks and byte-identical output for identical input.
import { describe, expect, it } from 'vitest';
import { escapeXml, formatValue, groupedBarChart, horizontalBarChart, lineChart, niceTicks, num } from '../../bench/svg.js';
import { checkXml, geometry } from './xml.js';

const nasty = `q<k> & "v" 'o'`;

function valid(svg: string): void {
  const elements = checkXml(svg);
  expect(elements[0]).toBe('svg');
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  const g = geometry(svg);
  expect(g.length).toBeGreaterThan(0);
  for (const v of g) expect(Number.isFinite(v)).toBe(true);
}

describe('svg helpers', () => {
  it('escapes the five XML characters', () => {
    expect(escapeXml(nasty)).toBe('q&lt;k&gt; &amp; &quot;v&quot; &#39;o&#39;');
  });

  it('writes finite numbers rounded to 0.01 and refuses the rest', () => {
    expect(num(1.23456)).toBe('1.23');
    expect(num(-0.001)).toBe('0');
    expect(num(100)).toBe('100');
    expect(() => num(NaN)).toThrow(/non-finite/);
    expect(() => num(Infinity)).toThrow(/non-finite/);
  });

  it('picks round ticks from 0 that cover the maximum', () => {
    expect(niceTicks(100)).toEqual([0, 20, 40, 60, 80, 100]);
    expect(niceTicks(199)).toEqual([0, 50, 100, 150, 200]);
    expect(niceTicks(0.00027)).toEqual([0, 0.0001, 0.0002, 0.0003]);
    for (const max of [0.37, 1, 7.5, 13.45, 427.7, 123456]) {
      const t = niceTicks(max);
      expect(t[0]).toBe(0);
      expect(t[t.length - 1]).toBeGreaterThanOrEqual(max);
      expect(t.length).toBeLessThanOrEqual(8);
    }
    expect(niceTicks(0)).toEqual([0, 1]);
    expect(niceTicks(NaN)).toEqual([0, 1]);
  });

  it('formats values for labels', () => {
    expect(formatValue(115.378)).toBe('115');
    expect(formatValue(12.859)).toBe('12.9');
    expect(formatValue(0.9563)).toBe('0.956');
    expect(formatValue(NaN)).toBe('—');
  });
});

describe('charts', () => {
  it('horizontal bars: valid, escaped, with a reference line and n/a for missing values', () => {
    const svg = horizontalBarChart({
      title: `Kernels ${nasty}`,
      subtitle: ['device <cpu>'],
      xLabel: '% & more',
      bars: [
        { label: nasty, value: 54.8, group: 'matmul' },
        { label: 'rmsnorm', value: 199, group: 'norm <fused>' },
        { label: 'missing', value: NaN },
      ],
      reference: { value: 100, label: '100 %' },
    });
    valid(svg);
    expect(svg).toContain('q&lt;k&gt; &amp; &quot;v&quot; &#39;o&#39;');
    expect(svg).toContain('norm &lt;fused&gt;');
    expect(svg).toContain('>n/a<');
    expect(svg).toContain('stroke-dasharray');
    expect(svg).not.toContain(nasty);
  });

  it('grouped bars: panels, null values skipped, notes under categories', () => {
    const svg = groupedBarChart({
      title: 'e2e',
      series: ['Paralon', `llama.cpp "F16"`],
      panels: [
        { title: 'Prefill', axisLabel: 'tok/s', categories: ['512 tokens'], values: [[115.4], [55.8]], notes: [['Paralon ÷ llama.cpp: 2.07×']] },
        { title: 'Decode', axisLabel: 'tok/s', categories: ['B = 1', 'B = 4'], values: [[12.9, 30], [null, 20]] },
      ],
    });
    valid(svg);
    expect(svg).toContain('llama.cpp &quot;F16&quot;');
    expect(svg).toContain('Paralon ÷ llama.cpp: 2.07×');
    expect(svg.match(/<rect /g)!.length).toBe(1 + 2 + 5); // background, legend, bars (2 + 3: one null)
  });

  it('line chart on a log2 axis: points in x order, a labelled point per value', () => {
    const svg = lineChart({
      title: 'server',
      xLabel: 'concurrency',
      yLabel: 'tok/s',
      xScale: 'log2',
      series: [{ name: 'tok/s', points: [{ x: 64, y: 427.7 }, { x: 1, y: 71.3 }, { x: 4, y: 227.9 }, { x: 16, y: NaN }] }],
      labelPoints: true,
    });
    valid(svg);
    const pts = /points="([^"]*)"/.exec(svg)![1].split(' ').map((p) => Number(p.split(',')[0]));
    expect(pts).toHaveLength(3);
    expect(pts[1] - pts[0]).toBeCloseTo((pts[2] - pts[1]) / 2, 1); // 1 → 4 is half of 4 → 64 in log2
    expect(svg).toContain('>428<');
  });

  it('identical input gives identical bytes', () => {
    const spec = { title: 't', xLabel: 'x', bars: [{ label: 'a', value: 1 / 3 }] };
    expect(horizontalBarChart(spec)).toBe(horizontalBarChart(spec));
  });

  it('the checker itself rejects broken XML', () => {
    expect(() => checkXml('<svg><text>a & b</text></svg>')).toThrow(/unescaped &/);
    expect(() => checkXml('<svg><text>a</svg>')).toThrow(/wrong element/);
    expect(() => checkXml('<svg><rect x=1/></svg>')).toThrow(/malformed/);
    expect(() => checkXml('<svg/><svg/>')).toThrow(/root/);
  });
});
