// The architectures Paralon runs, by the names checkpoints give them: config.json's
// `architectures[0]` (Hugging Face) and `general.architecture` (GGUF). The engine, the server and the
// CLI ask the registry, never an architecture by class. Adding an architecture is one file plus one
// line in BUILTIN below (or a registerArchitecture call from outside, as the tests do).
import type { AnyArchitecture, ModelConfig } from './architecture.js';
import { readConfigJson } from './config.js';
import { qwen3 } from './qwen3.js';

const BUILTIN: AnyArchitecture[] = [qwen3];

const byName = new Map<string, AnyArchitecture>();
const byGgufName = new Map<string, AnyArchitecture>();

/** Makes `arch` loadable by its names; a name already taken by another architecture is an error. */
export function registerArchitecture(arch: AnyArchitecture): void {
  for (const [names, map] of [[arch.names, byName], [arch.ggufNames ?? [], byGgufName]] as const)
    for (const name of names) {
      const taken = map.get(name);
      if (taken && taken !== arch) throw new Error(`registerArchitecture: "${name}" is already registered`);
    }
  for (const name of arch.names) byName.set(name, arch);
  for (const name of arch.ggufNames ?? []) byGgufName.set(name, arch);
}

for (const arch of BUILTIN) registerArchitecture(arch);

/** The config.json architecture names that can be loaded. */
export function architectureNames(): string[] {
  return [...byName.keys()];
}

/** The architecture registered for a GGUF `general.architecture`, or an error listing those that are. */
export function ggufArchitecture(name: string, source: string): AnyArchitecture {
  const arch = byGgufName.get(name);
  if (!arch)
    throw new Error(`${source}: general.architecture is "${name}"; Paralon runs ${[...byGgufName.keys()].join(', ')}`);
  return arch;
}

/** Reads `dir/config.json` and parses it as the architecture it names. */
export function readModelConfig(dir: string): { arch: AnyArchitecture; config: ModelConfig } {
  const { json, file } = readConfigJson(dir);
  return parseModelConfig(json, file);
}

/**
 * Picks the architecture of a parsed config.json by `architectures[0]` and parses the config with it.
 * Errors name the file and list the architectures that exist.
 */
export function parseModelConfig(json: unknown, source = 'config.json'): { arch: AnyArchitecture; config: ModelConfig } {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${source}: expected a JSON object`);
  const archs = (json as Record<string, unknown>).architectures;
  if (archs !== undefined && archs !== null && (!Array.isArray(archs) || !archs.every((a) => typeof a === 'string')))
    throw new Error(`${source}: architectures must be a list of strings`);
  const modelType = (json as Record<string, unknown>).model_type;
  const known = architectureNames().join(', ');
  // Old configs may name only model_type; the architecture whose modelTypes include it runs them.
  const name = (archs as string[] | undefined | null)?.[0] ??
    [...byName.values()].find((a) => a.modelTypes?.includes(modelType as string))?.names[0];
  if (name === undefined)
    throw new Error(`${source}: ${modelType === undefined ? 'neither architectures nor model_type is set' : `model_type "${String(modelType)}" is unknown`}; Paralon runs ${known}`);
  const arch = byName.get(name);
  if (!arch) throw new Error(`${source}: the model is ${name}; Paralon runs ${known}`);
  return { arch, config: arch.parseConfig(json, source) };
}
