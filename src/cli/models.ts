// `paralon pull ID`, `paralon ls`, `paralon rm ID`: the models in the Hugging Face cache (shared with
// vLLM, transformers and huggingface-cli).
import { parseArgs } from 'node:util';
import { createProgressBar, formatBytes, hubCacheDir, listCachedModels, parseHubId, removeCachedModel, resolveHubModel, type ProgressBar } from '../hub/index.js';
import { UsageError } from './errors.js';
import { printTable } from './table.js';

export const MODELS_HELP = `  paralon pull ID [--revision REV] [--hf-token TOKEN]
                                       download a model into the Hugging Face cache (or update it)
  paralon ls                           cached models: id, revision, size, format, path
  paralon rm ID                        delete a cached model (ID:QUANT: only that GGUF quantization)
`;

export async function pull(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { revision: { type: 'string' }, 'hf-token': { type: 'string' } }, allowPositionals: true, strict: true });
  const id = oneHubId(positionals, 'pull');
  let bar: ProgressBar | null = null;
  const model = await resolveHubModel(id, {
    revision: values.revision,
    token: values['hf-token'],
    refresh: true,
    onProgress: (p) => {
      bar ??= createProgressBar(`downloading ${p.repo}`, { stream: process.stderr });
      bar.update(p.downloadedBytes, p.totalBytes);
    },
  }).finally(() => (bar as ProgressBar | null)?.finish());
  const hub = model.hub!;
  const fetched = hub.downloadedBytes > 0 ? `downloaded ${formatBytes(hub.downloadedBytes)}` : 'already up to date';
  console.log(`${model.id} @ ${hub.revision} (${hub.commit.slice(0, 12)}): ${fetched}`);
  console.log(model.path);
  return 0;
}

export function ls(args: string[]): number {
  parseArgs({ args, options: {}, strict: true });
  const cacheDir = hubCacheDir();
  const models = listCachedModels(cacheDir);
  if (models.length === 0) {
    console.log(`No models in ${cacheDir}. Fetch one with \`paralon pull Qwen/Qwen3-0.6B\`.`);
    return 0;
  }
  printTable(['ID', 'REVISION', 'SIZE', 'FORMAT', 'PATH'], models.map((m) => [m.id, m.revision, formatBytes(m.sizeBytes), m.format, m.path]));
  return 0;
}

export function rm(args: string[]): number {
  const { positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
  const id = oneHubId(positionals, 'rm');
  const freed = removeCachedModel(id);
  console.log(`Removed ${positionals[0]} (${formatBytes(freed)} freed).`);
  return 0;
}

function oneHubId(positionals: string[], command: string) {
  if (positionals.length !== 1) throw new UsageError(`${command} needs one model id, e.g. paralon ${command} Qwen/Qwen3-0.6B`);
  const id = parseHubId(positionals[0]);
  if (id === null) throw new UsageError(`'${positionals[0]}' is not a hub id; expected owner/name or owner/name:QUANT, e.g. Qwen/Qwen3-0.6B`);
  return id;
}
