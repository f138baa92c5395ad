// loadModel as the library exports it: a checkpoint directory, a .gguf file or a Hugging Face id
// (`Qwen/Qwen3-0.6B`, `Qwen/Qwen3-8B-GGUF:Q4_K_M`) → local files (hub/, downloading what the cache
// lacks) → a Model on a device.
import { Model, type LoadModelOptions } from './engine/model.js';
import { resolveModel, type HubOptions } from './hub/index.js';

export interface LoadOptions extends LoadModelOptions {
  /** Where and how hub ids are fetched: revision, token, cache, offline mode, download progress. */
  hub?: HubOptions;
}

/** Loads a model: `const model = await loadModel('Qwen/Qwen3-0.6B', { device: 'cuda:0' })`. */
export async function loadModel(model: string, options: LoadOptions = {}): Promise<Model> {
  const { hub, ...load } = options;
  const resolved = await resolveModel(model, hub);
  return Model.load(resolved.path, { ...load, id: load.id ?? resolved.id });
}
