// A small XML well-formedness check for the SVG charts (no dependency): one root element, tags nested
// and closed, attributes quoted, text and attribute values free of raw '<' and of '&' that does not
// start an entity. Returns the element names in document order.
const ENTITY = /^&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/;

function checkText(s: string, where: string): void {
  for (let i = s.indexOf('&'); i >= 0; i = s.indexOf('&', i + 1))
    if (!ENTITY.test(s.slice(i))) throw new Error(`unescaped & in ${where}: ${s.slice(i, i + 20)}`);
  if (s.includes('<')) throw new Error(`raw < in ${where}`);
}

export function checkXml(xml: string): string[] {
  const elements: string[] = [];
  const stack: string[] = [];
  let roots = 0;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const textEnd = lt < 0 ? xml.length : lt;
    const between = xml.slice(i, textEnd);
    if (stack.length === 0 && between.trim() !== '') throw new Error(`text outside the root: ${between.slice(0, 30)}`);
    checkText(between, 'text');
    if (lt < 0) break;
    const tag = /^<(\/?)([A-Za-z_][\w:.-]*)((?:\s+[A-Za-z_:][\w:.-]*="[^"]*")*)\s*(\/?)>/.exec(xml.slice(lt));
    if (!tag) throw new Error(`malformed tag at ${lt}: ${xml.slice(lt, lt + 40)}`);
    const [whole, close, name, attrs, selfClose] = tag;
    const names = new Set<string>();
    for (const [, attr, value] of attrs.matchAll(/([A-Za-z_:][\w:.-]*)="([^"]*)"/g)) {
      if (names.has(attr)) throw new Error(`duplicate attribute ${attr} on <${name}>`);
      names.add(attr);
      checkText(value, `attribute ${attr} of <${name}>`);
    }
    if (close) {
      if (attrs || selfClose) throw new Error(`bad closing tag ${whole}`);
      if (stack.pop() !== name) throw new Error(`</${name}> closes the wrong element`);
    } else {
      if (stack.length === 0 && roots++ > 0) throw new Error('more than one root element');
      elements.push(name);
      if (!selfClose) stack.push(name);
    }
    i = lt + whole.length;
  }
  if (stack.length) throw new Error(`unclosed <${stack[stack.length - 1]}>`);
  if (roots !== 1) throw new Error('no root element');
  return elements;
}

/** Every numeric-looking geometry attribute of the SVG, parsed. */
export function geometry(svg: string): number[] {
  const out: number[] = [];
  for (const [, , v] of svg.matchAll(/\b(x|y|x1|y1|x2|y2|cx|cy|r|width|height)="([^"]*)"/g)) out.push(Number(v));
  for (const [, pts] of svg.matchAll(/points="([^"]*)"/g)) for (const p of pts.split(/[ ,]/)) out.push(Number(p));
  return out;
}
