// A grammar worker thread: one xgrammar tokenizer info and compiler (≈ 0.15–0.3 s and ~180 MB, once),
// the grammars compiled here and the matchers using them. All xgrammar calls block, which is why they
// live here and never on the event loop. After accepting a token the worker fills the next mask at
// once, so it is ready (or nearly) when the engine asks for it.
import { parentPort, workerData } from 'node:worker_threads';
import type { GrammarFormat } from './format.js';
import type { MaskState, WorkerInit, WorkerReply, WorkerRequest } from './protocol.js';
import { loadXGrammar, type XGrammar } from './xgrammar.js';

const port = parentPort;
if (port === null) throw new Error('grammar/worker.ts runs only as a worker thread');

const init = workerData as WorkerInit;
const xg = loadXGrammar();
const tokenizerInfo = await xg.TokenizerInfo.createTokenizerInfo(init.vocab, 'byte_level', false, init.logitsWidth, init.stopTokenIds);
// xgrammar's own cache stays off: the pool caches compiled grammars by canonical key.
const compiler = await xg.GrammarCompiler.createGrammarCompiler(tokenizerInfo, false);
// The first compile on a compiler pays a one-time preprocessing of the vocabulary (~0.2–0.3 s for
// Qwen3); paid here, before `ready`, so the compile time limit measures only the request's grammar.
(await compiler.compileStructuralTag({ type: 'structural_tag', format: { type: 'const_string', value: '{}' } })).dispose();
const stopTokens = new Set(init.stopTokenIds);

const grammars = new Map<number, XGrammar.CompiledGrammar>();
const matchers = new Map<number, XGrammar.GrammarMatcher>();
let nextHandle = 1;

/**
 * JSON schemas become EBNF with no free whitespace: one line, separators ", " and ": " (the spacing
 * of Python's json.dumps, which Qwen3's tool calls use). xgrammar's whitespace-tolerant mode lets a
 * model emit whitespace forever; here the only unbounded runs are inside strings the schema allows.
 */
async function lower(format: GrammarFormat): Promise<unknown> {
  switch (format.type) {
    case 'json_schema':
      return {
        type: 'grammar',
        grammar: await xg.Testings._jsonSchemaToEBNF(JSON.stringify(format.json_schema), false, -1, [', ', ': '], true),
      };
    case 'sequence':
    case 'or':
      return { ...format, elements: await Promise.all(format.elements.map(lower)) };
    case 'tag':
      return { ...format, content: await lower(format.content) };
    case 'triggered_tags':
    case 'tags_with_separator':
      return { ...format, tags: await Promise.all(format.tags.map(lower)) };
    default:
      return format;
  }
}

/**
 * The mask and whether only stop tokens remain. A mask is sent even when the grammar allows every
 * token (free text before a lazy trigger): it still bans the logits' padding ids past the vocabulary,
 * which the matcher could not accept.
 */
function maskState(bitmask: Int32Array): MaskState {
  // Own the buffer (it is transferred to the main thread), never a view of the WASM heap.
  const mask = bitmask.byteOffset === 0 && bitmask.buffer.byteLength === bitmask.byteLength ? bitmask : bitmask.slice();
  for (let word = 0; word < mask.length; word++) {
    const bits = mask[word];
    if (bits === 0) continue;
    for (let b = 0; b < 32; b++) if (bits & (1 << b) && !stopTokens.has(word * 32 + b)) return { mask, complete: false };
  }
  return { mask, complete: true };
}

function stopOnlyMask(): Int32Array {
  const mask = new Int32Array(Math.ceil(init.logitsWidth / 32));
  for (const t of stopTokens) mask[t >> 5] |= 1 << (t & 31);
  return mask;
}

async function handle(req: WorkerRequest): Promise<WorkerReply> {
  switch (req.op) {
    case 'compile': {
      const compiled = await compiler.compileStructuralTag({ type: 'structural_tag', format: await lower(req.format) } as XGrammar.StructuralTag);
      const grammar = nextHandle++;
      grammars.set(grammar, compiled);
      return { id: req.id, ok: true, grammar };
    }
    case 'release': {
      grammars.get(req.grammar)?.dispose();
      grammars.delete(req.grammar);
      return { id: req.id, ok: true };
    }
    case 'matcher': {
      const compiled = grammars.get(req.grammar);
      if (compiled === undefined) throw new Error(`grammar ${req.grammar} is not on this worker`);
      const matcher = await xg.GrammarMatcher.createGrammarMatcher(compiled);
      const id = nextHandle++;
      matchers.set(id, matcher);
      return { id: req.id, ok: true, matcher: id, state: maskState(await matcher.getNextTokenBitmask()) };
    }
    case 'accept': {
      const matcher = matchers.get(req.matcher);
      if (matcher === undefined) throw new Error(`matcher ${req.matcher} is not on this worker`);
      if (!matcher.acceptToken(req.token)) return { id: req.id, ok: true, accepted: false };
      // After a stop token the output is over; should the engine ask again, only stops are allowed.
      const state: MaskState = matcher.isTerminated() ? { mask: stopOnlyMask(), complete: true } : maskState(await matcher.getNextTokenBitmask());
      return { id: req.id, ok: true, accepted: true, state };
    }
    case 'dispose': {
      matchers.get(req.matcher)?.dispose();
      matchers.delete(req.matcher);
      return { id: req.id, ok: true };
    }
  }
}

// Requests run one at a time, in arrival order (a matcher's accepts must not interleave).
let queue = Promise.resolve();
port.on('message', (req: WorkerRequest) => {
  queue = queue.then(async () => {
    let reply: WorkerReply;
    try {
      reply = await handle(req);
    } catch (error) {
      reply = { id: req.id, ok: false, error: error instanceof Error ? error.message : String(error) };
    }
    const mask = reply.ok && 'state' in reply ? reply.state?.mask : null;
    port.postMessage(reply, mask ? [mask.buffer as ArrayBuffer] : []);
  });
});
port.postMessage({ id: -1, ok: true, ready: true } satisfies WorkerReply);
