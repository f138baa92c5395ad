// Loads xgrammar's WASM build (@mlc-ai/web-xgrammar). Its package.json says "type": "module" but the
// bundle is CommonJS/UMD, so neither `import` nor `require` can load it as published: the bundle is
// compiled here as a CommonJS module instead (Module#_compile, which also gives it a working dynamic
// `import()`, which it uses to reach node:module). Only worker threads call this: every xgrammar call
// is synchronous.
import { readFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import type * as XGrammar from '@mlc-ai/web-xgrammar';

export type { XGrammar };

interface CompilableModule {
  filename: string;
  paths: string[];
  exports: unknown;
  _compile(source: string, filename: string): void;
}

type ModuleInternals = typeof Module & { _nodeModulePaths(dir: string): string[] };

let loaded: typeof XGrammar | undefined;

export function loadXGrammar(): typeof XGrammar {
  if (loaded) return loaded;
  const file = createRequire(import.meta.url).resolve('@mlc-ai/web-xgrammar');
  const mod = new Module(file) as unknown as CompilableModule;
  mod.filename = file;
  mod.paths = (Module as ModuleInternals)._nodeModulePaths(path.dirname(file));
  mod._compile(readFileSync(file, 'utf8'), file);
  loaded = mod.exports as typeof XGrammar;
  return loaded;
}
