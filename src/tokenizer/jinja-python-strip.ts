// Gives @huggingface/jinja's string methods strip/lstrip/rstrip Python's semantics. The library (0.5.x)
// ignores their `chars` argument and trims JavaScript whitespace, but chat templates rely on the
// argument: Qwen3's splits reasoning with `content.lstrip('\n')` and `reasoning_content.strip('\n')`,
// so "</think>\n\n  indented" must keep its two spaces, as transformers (Python jinja2) renders it.
//
// The library exports neither its value classes nor a hook for string methods, so this reaches them
// through a value it creates: the getter that builds a string's method table is wrapped once, at
// import, and the three entries are replaced in each table it returns. If a library update changes
// that shape, the import throws rather than silently rendering different prompts.

import { Environment } from '@huggingface/jinja';

/** Python's str.isspace() set, the default for strip() with no argument. */
const PYTHON_WHITESPACE = new Set(
  '\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000',
);

/** Python's str.strip / lstrip / rstrip: `chars` is a set of characters (code points), not a prefix. */
export function pythonStrip(s: string, chars: string | null, left: boolean, right: boolean): string {
  const set = chars === null ? PYTHON_WHITESPACE : new Set(chars);
  const cps = Array.from(s);
  let start = 0;
  let end = cps.length;
  if (left) while (start < end && set.has(cps[start])) start++;
  if (right) while (end > start && set.has(cps[end - 1])) end--;
  return cps.slice(start, end).join('');
}

interface JinjaValue {
  value: unknown;
  type: string;
  builtins: Map<string, JinjaValue>;
}
type JinjaValueClass<T> = new (value: T) => JinjaValue;

function installPythonStrip(): void {
  const sample = new Environment().set('probe', ' x ') as unknown as JinjaValue;
  const proto = Object.getPrototypeOf(sample) as object;
  const getter = Object.getOwnPropertyDescriptor(proto, 'builtins')?.get;
  const stripFn = sample.builtins.get('strip');
  if (sample.type !== 'StringValue' || getter === undefined || stripFn?.type !== 'FunctionValue') {
    throw new Error('@huggingface/jinja changed shape: cannot give strip/lstrip/rstrip their Python semantics');
  }
  const StringValue = sample.constructor as JinjaValueClass<string>;
  const FunctionValue = stripFn.constructor as JinjaValueClass<(args: JinjaValue[]) => JinjaValue>;
  const patched = new WeakSet<Map<string, JinjaValue>>();

  Object.defineProperty(proto, 'builtins', {
    configurable: true,
    get(this: JinjaValue) {
      const table = getter.call(this) as Map<string, JinjaValue>;
      if (patched.has(table)) return table;
      const text = this.value as string;
      const method = (name: string, left: boolean, right: boolean) =>
        new FunctionValue((args) => {
          const arg = args[0];
          let chars: string | null = null;
          if (arg !== undefined && arg.type !== 'NullValue' && arg.type !== 'UndefinedValue') {
            if (arg.type !== 'StringValue') throw new Error(`${name}() argument must be a string or none`);
            chars = arg.value as string;
          }
          return new StringValue(pythonStrip(text, chars, left, right));
        });
      table.set('strip', method('strip', true, true));
      table.set('lstrip', method('lstrip', true, false));
      table.set('rstrip', method('rstrip', false, true));
      patched.add(table);
      return table;
    },
  });
}

installPythonStrip();
