// The grammar engine on Qwen3's real vocabulary, with a stand-in sampler: each step draws a random
// token among those the mask allows (with a lean towards closing characters so outputs end). Whatever
// it draws, the output must parse and validate — the same guarantee the noise-weight model gets.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TokenConstraint } from '../../src/engine/constraint.js';
import { planOutput } from '../../src/engine/output-format.js';
import { GrammarCompileError, GrammarPool, canonicalKey } from '../../src/grammar/index.js';
import type { Tokenizer } from '../../src/tokenizer/index.js';
import { ToolCallParser } from '../../src/tokenizer/tool-calls.js';
import { mulberry32 } from '../reference/random.js';
import { loadQwen3Tokenizer } from '../tokenizer/qwen3.js';

const LOGITS_WIDTH = 151_936;
const IM_END = 151_645;
const ENDOFTEXT = 151_643;

let tokenizer: Tokenizer;
let pool: GrammarPool;

beforeAll(async () => {
  tokenizer = await loadQwen3Tokenizer();
  pool = new GrammarPool({ vocab: tokenizer.encodedVocab(), logitsWidth: LOGITS_WIDTH, stopTokenIds: [IM_END, ENDOFTEXT], workers: 1 });
});
afterAll(() => pool?.close());

function allowedTokens(mask: Int32Array | null): number[] {
  const out: number[] = [];
  for (let t = 0; t < LOGITS_WIDTH; t++) if (mask === null || (mask[t >> 5] & (1 << (t & 31))) !== 0) out.push(t);
  return out;
}

/** Runs the stand-in sampler until an end token; returns the generated ids (without the end). */
async function drive(constraint: TokenConstraint, seed: number, forced: number[] = [], maxSteps = 400): Promise<number[]> {
  const random = mulberry32(seed);
  const closers = new Set(['"', '}', ']', ',', '\n', '</tool_call>'].map((t) => tokenizer.tokenToId(t)!));
  const out: number[] = [];
  for (let step = 0; step < maxSteps; step++) {
    const mask = await constraint.nextMask();
    if (mask !== null) expect(mask.length).toBe(Math.ceil(LOGITS_WIDTH / 32));
    let token: number;
    if (step < forced.length) token = forced[step];
    else {
      const allowed = allowedTokens(mask);
      expect(allowed.length).toBeGreaterThan(0);
      // Padding ids past the tokenizer's vocabulary are never allowed by a grammar.
      if (mask !== null) expect(allowed.every((t) => t < tokenizer.vocabSize)).toBe(true);
      const ends = allowed.filter((t) => t === IM_END || t === ENDOFTEXT);
      if (ends.length > 0 && (constraint.isTerminated() || random() < 0.5)) return out;
      const lean = allowed.filter((t) => closers.has(t));
      const pickFrom = lean.length > 0 && random() < 0.35 ? lean : allowed;
      token = pickFrom[Math.floor(random() * pickFrom.length)];
    }
    expect(constraint.accept(token)).toBe(true);
    if (token === IM_END || token === ENDOFTEXT) {
      expect(constraint.isTerminated() || (await constraint.nextMask(), constraint.isTerminated())).toBe(true);
      return out;
    }
    out.push(token);
  }
  throw new Error(`no end within ${maxSteps} steps: ${JSON.stringify(tokenizer.decode(out))}`);
}

const ajv = new Ajv2020({ strict: false });

const PERSON = {
  type: 'object',
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 12 },
    role: { enum: ['admin', 'user', 'guest'] },
    age: { type: 'integer', minimum: 0, maximum: 150 },
    address: {
      type: 'object',
      properties: { city: { type: 'string', maxLength: 10 }, zip: { type: 'string', pattern: '^[0-9]{5}$' } },
      required: ['city', 'zip'],
      additionalProperties: false,
    },
    tags: { type: 'array', items: { type: 'string', maxLength: 6 }, minItems: 1, maxItems: 3 },
  },
  required: ['name', 'role', 'address', 'tags'],
  additionalProperties: false,
};

describe('grammar constraint on the Qwen3 vocabulary', () => {
  it('json_schema: every random walk the mask allows parses and validates (nested objects, arrays, enums, limits)', async () => {
    const plan = planOutput({ responseFormat: { type: 'json_schema', json_schema: { name: 'person', schema: PERSON } } }, 'content');
    const grammar = await pool.compile(plan.format!);
    const validate = ajv.compile(PERSON);
    for (let seed = 1; seed <= 3; seed++) {
      const constraint = await pool.constraint(grammar);
      const text = tokenizer.decode(await drive(constraint, seed));
      constraint.dispose();
      const value = JSON.parse(text);
      expect(validate(value), `${text}: ${JSON.stringify(validate.errors)}`).toBe(true);
      // One line, Python's json.dumps spacing: no run of free whitespace anywhere outside strings.
      expect(text).not.toMatch(/\n/);
      expect(text.replace(/"(?:[^"\\]|\\.)*"/g, '""')).not.toMatch(/\s\s/);
    }
  });

  it('json_object: any JSON object, whitespace bounded', async () => {
    const constraint = await pool.constrain(planOutput({ responseFormat: { type: 'json_object' } }, 'content').format!);
    const first = allowedTokens(await constraint.nextMask());
    // The first token opens the object: no whitespace, no other value.
    expect(first.map((t) => tokenizer.decode([t])).every((s) => s.startsWith('{'))).toBe(true);
    const text = tokenizer.decode(await drive(constraint, 7));
    constraint.dispose();
    expect(typeof JSON.parse(text)).toBe('object');
  });

  it('tool_choice required: only valid calls of the listed functions, arguments valid against their parameters', async () => {
    const tools = [
      { type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string', maxLength: 8 }, unit: { enum: ['c', 'f'] } }, required: ['city', 'unit'], additionalProperties: false } } },
      { type: 'function' as const, function: { name: 'add', parameters: { type: 'object', properties: { a: { type: 'integer', minimum: -9, maximum: 9 }, b: { type: 'integer', minimum: -9, maximum: 9 } }, required: ['a', 'b'], additionalProperties: false } } },
    ];
    const plan = planOutput({ tools, toolChoice: 'required', parallelToolCalls: true }, 'content');
    expect(plan.parseToolCalls).toBe(true);
    const grammar = await pool.compile(plan.format!);
    const validators = new Map(tools.map((t) => [t.function.name, ajv.compile(t.function.parameters)]));
    for (let seed = 11; seed <= 13; seed++) {
      const constraint = await pool.constraint(grammar);
      // The very first token must open a call.
      expect(allowedTokens(await constraint.nextMask()).map((t) => tokenizer.decode([t]))).toContain('<tool_call>');
      const text = tokenizer.decode(await drive(constraint, seed));
      constraint.dispose();
      const parser = new ToolCallParser();
      const parts = [...parser.push(text), ...parser.flush()];
      expect(parts.filter((p) => p.type === 'text')).toEqual([]);
      const calls: { name: string; args: string }[] = [];
      for (const p of parts) {
        if (p.type === 'call') calls[p.index] = { name: p.name, args: '' };
        if (p.type === 'arguments') calls[p.index].args += p.text;
      }
      expect(calls.length).toBeGreaterThan(0);
      for (const c of calls) {
        const validate = validators.get(c.name)!;
        expect(validate, c.name).toBeDefined();
        expect(validate(JSON.parse(c.args)), c.args).toBe(true);
      }
    }
  });

  it('a named function with parallel_tool_calls false: exactly one call of it, then only the end', async () => {
    const tools = [
      { type: 'function' as const, function: { name: 'a', parameters: { type: 'object', properties: { x: { type: 'boolean' } }, required: ['x'] } } },
      { type: 'function' as const, function: { name: 'b' } },
    ];
    const plan = planOutput({ tools, toolChoice: { type: 'function', function: { name: 'b' } }, parallelToolCalls: false }, 'content');
    const constraint = await pool.constrain(plan.format!);
    const ids = await drive(constraint, 5);
    expect(constraint.isTerminated()).toBe(true);
    expect(allowedTokens(await constraint.nextMask())).toEqual([ENDOFTEXT, IM_END]);
    constraint.dispose();
    expect(tokenizer.decode(ids)).toBe('<tool_call>\n{"name": "b", "arguments": {}}\n</tool_call>');
  });

  it('with thinking on, the reasoning is free and the grammar starts after </think>', async () => {
    const plan = planOutput({ responseFormat: { type: 'json_schema', json_schema: { name: 'p', schema: PERSON } } }, 'detect');
    const constraint = await pool.constrain(plan.format!);
    const forced = tokenizer.encode('<think>\nLet me think: {not json} here.\n</think>\n\n', { addSpecialTokens: false });
    const ids = await drive(constraint, 3, forced);
    constraint.dispose();
    const text = tokenizer.decode(ids);
    const answer = text.slice(text.indexOf('</think>') + '</think>\n\n'.length);
    expect(ajv.validate(PERSON, JSON.parse(answer))).toBe(true);
  });

  it('auto: free text until the model opens <tool_call>, then a valid call', async () => {
    const tools = [{ type: 'function' as const, function: { name: 'f', parameters: { type: 'object', properties: { q: { type: 'string', maxLength: 5 } }, required: ['q'] } } }];
    const constraint = await pool.constrain(planOutput({ tools, toolChoice: 'auto' }, 'content').format!);
    // Free text: every token of the vocabulary, none of the logits' padding ids.
    expect(allowedTokens(await constraint.nextMask())).toEqual(Array.from({ length: tokenizer.vocabSize }, (_, t) => t));
    const forced = tokenizer.encode('Sure, calling it.\n<tool_call>', { addSpecialTokens: false });
    const random = mulberry32(9);
    let ids: number[] = [];
    for (const t of forced) {
      await constraint.nextMask();
      expect(constraint.accept(t)).toBe(true);
      ids.push(t);
    }
    const mask = await constraint.nextMask();
    expect(allowedTokens(mask).map((t) => tokenizer.decode([t]))).toEqual(['\n']);
    // Drive until the call closes (after it, text is free again).
    while (!tokenizer.decode(ids).includes('</tool_call>')) {
      const allowed = allowedTokens(await constraint.nextMask());
      const t = allowed[Math.floor(random() * allowed.length)];
      expect(constraint.accept(t)).toBe(true);
      ids.push(t);
      expect(ids.length).toBeLessThan(300);
    }
    constraint.dispose();
    const text = tokenizer.decode(ids);
    const call = text.slice(text.indexOf('<tool_call>') + '<tool_call>'.length, text.indexOf('</tool_call>'));
    expect(JSON.parse(call)).toMatchObject({ name: 'f', arguments: { q: expect.any(String) } });
    ids = [];
  });

  it('accept refuses a token outside the mask without touching the matcher', async () => {
    const constraint = await pool.constrain({ type: 'json_schema', json_schema: { type: 'boolean' } });
    await constraint.nextMask();
    expect(constraint.accept(tokenizer.tokenToId('hello')!)).toBe(false);
    expect(constraint.accept(tokenizer.encode('true', { addSpecialTokens: false })[0])).toBe(true);
    constraint.dispose();
  });

  it('caches by the canonical schema: the same schema with keys reordered compiles once', async () => {
    const a = { type: 'json_schema' as const, json_schema: { type: 'object', properties: { k: { type: 'integer' }, j: { type: 'string' } } } };
    const b = { type: 'json_schema' as const, json_schema: { properties: { j: { type: 'string' }, k: { type: 'integer' } }, type: 'object' } };
    expect(canonicalKey(a)).toBe(canonicalKey(b));
    const first = await pool.compile(a);
    const started = performance.now();
    const again = await pool.compile(b);
    expect(performance.now() - started).toBeLessThan(50);
    expect(again).toBe(first);
  });

  it('a schema it cannot enforce is a GrammarCompileError, and the pool keeps working', async () => {
    const bad = pool.compile({ type: 'json_schema', json_schema: { type: 'object', properties: { a: { $ref: '#/$defs/missing' } } } });
    await expect(bad).rejects.toBeInstanceOf(GrammarCompileError);
    await expect(bad).rejects.toMatchObject({ reason: 'invalid' });
    const ok = await pool.constrain({ type: 'json_schema', json_schema: { type: 'integer' } });
    ok.dispose();
  });
});

describe('compile time limit', () => {
  it('a compile over the limit fails with reason timeout; the replaced worker serves the next request', async () => {
    const tokenizer = await loadQwen3Tokenizer();
    const small = new GrammarPool({ vocab: tokenizer.encodedVocab(), logitsWidth: LOGITS_WIDTH, stopTokenIds: [IM_END], workers: 1, compileTimeoutMs: 300 });
    try {
      // 40 string fields with length limits: seconds to compile, far over 300 ms.
      const properties = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`field_${i}`, { type: 'string', minLength: 3, maxLength: 40 + i }]));
      const schema = { type: 'object', properties, required: Object.keys(properties) };
      const started = performance.now();
      await expect(small.compile({ type: 'json_schema', json_schema: schema })).rejects.toMatchObject({ name: 'GrammarCompileError', reason: 'timeout' });
      expect(performance.now() - started).toBeLessThan(5_000);
      // The limit counts compile time only, not the new worker's start (its tokenizer info).
      const next = await small.constrain({ type: 'json_schema', json_schema: { type: 'boolean' } });
      next.dispose();
    } finally {
      small.close();
    }
  });
});
