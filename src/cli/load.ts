// The model a command names (--model: a directory, a .gguf file or a hub id; none: the demo model),
// fetched with a download bar and loaded with a weights bar, shared by serve, run and chat.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { Model, type LoadModelOptions } from '../engine/model.js';
import { createProgressBar, resolveModel, type ProgressBar } from '../hub/index.js';
import { writeDemoModel } from '../model/demo.js';
import { readModelConfig } from '../model/registry.js';
import { UsageError } from './errors.js';

/** The model id of the embedded demo model. */
export const DEMO_MODEL_ID = 'paralon-demo';

export interface ModelChoice {
  /** --model; undefined: the demo model under <dataDir>/demo-model. */
  spec?: string;
  dataDir: string;
  revision?: string;
  hfToken?: string;
}

export interface LocalModel {
  path: string;
  /** The default id: the hub id or paralon-demo; a local path's is the loader's (its name, quantization suffix dropped). */
  id?: string;
  demo: boolean;
}

type Stream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** Local files for the chosen model, downloading (with a progress display on `stream`) what the cache lacks. */
export async function localModel(choice: ModelChoice, stream: Stream): Promise<LocalModel> {
  if (choice.spec === undefined) {
    const dir = path.join(choice.dataDir, 'demo-model');
    if (!existsSync(path.join(dir, 'config.json'))) {
      stream.write(`Writing the demo model (random weights) to ${dir} …\n`);
      writeDemoModel(dir);
    }
    return { path: dir, id: DEMO_MODEL_ID, demo: true };
  }
  let bar: ProgressBar | null = null;
  const resolved = await resolveModel(choice.spec, {
    revision: choice.revision,
    token: choice.hfToken,
    onProgress: (p) => {
      bar ??= createProgressBar(`downloading ${p.repo}`, { stream });
      bar.update(p.downloadedBytes, p.totalBytes);
    },
  }).finally(() => (bar as ProgressBar | null)?.finish());
  if (resolved.format === 'safetensors' && statSync(resolved.path).isDirectory() && !existsSync(path.join(resolved.path, 'config.json')))
    throw new UsageError(
      `${resolved.path} is not a checkpoint directory (it has no config.json); expected a Hugging Face checkpoint directory ` +
        '(config.json, tokenizer files, safetensors), a .gguf file, or a hub id such as Qwen/Qwen3-0.6B',
    );
  if (resolved.format === 'safetensors') {
    // An architecture Paralon lacks or a malformed config.json is the model's fault, not the machine's.
    try {
      readModelConfig(resolved.path);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  return { path: resolved.path, id: resolved.id, demo: false };
}

/** Model.load with a weights bar on `stream` (when `showProgress`). */
export function loadLocalModel(local: LocalModel, options: LoadModelOptions, stream: Stream, showProgress: boolean): Promise<Model> {
  let bar: ProgressBar | null = null;
  const onProgress = showProgress
    ? (loaded: number, total: number) => {
        bar ??= createProgressBar('loading weights', { stream });
        bar.update(loaded, total);
        if (loaded >= total) bar.finish();
      }
    : undefined;
  return Model.load(local.path, { ...options, id: options.id ?? local.id, onProgress })
    .then((model) => {
      if (options.cpuPrecision === 'fast' && model.device.name === 'cpu' && model.device.precision !== 'fast')
        stream.write('note: --cpu-precision fast needs AVX512-BF16, AVX512-VNNI or AVX2 (this CPU has none): using exact\n');
      return model;
    })
    .finally(() => (bar as ProgressBar | null)?.finish());
}
