// Constrained decoding: xgrammar (WASM) in worker threads, one allowed-token mask per step.
export { GrammarPool, GrammarCompileError, type GrammarPoolOptions, type CompiledGrammar } from './pool.js';
export { GrammarConstraint } from './constraint.js';
export { BannedTokens } from './banned.js';
export { canonicalKey, type GrammarFormat, type TagFormat, type JsonSchema } from './format.js';
