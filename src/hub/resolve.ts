// A model as people name it → local files: an existing directory or .gguf file is used as it is; a hub
// id (owner/name[:QUANT]) is found in the Hugging Face cache or downloaded into it. A complete cached
// snapshot is used without a request (so serving works offline and starts at once); `refresh` (paralon
// pull) asks the hub for the revision's current commit first. HF_HUB_OFFLINE=1 never touches the network.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { hubCacheDir, RepoCache, snapshotFiles } from './cache.js';
import { HubError } from './errors.js';
import { authHeaders, fileMetadata, repoInfo, type FileMetadata, type HubClient } from './hub-api.js';
import { formatHubId, parseHubId, type HubModelId } from './model-id.js';
import { DEFAULT_QUANT, quantOf, SAFETENSORS_INDEX, selectFiles, shardsOfIndex, type FileSelection, type ModelFormat } from './select-files.js';
import { downloadBlob } from './transfer.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubOptions {
  /** Branch, tag or commit (default main). */
  revision?: string;
  /** Access token for gated and private repos (default: HF_TOKEN). */
  token?: string;
  /** The hub (default: HF_ENDPOINT, else https://huggingface.co). */
  endpoint?: string;
  /** The cache (default: HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Use only the cache (default: HF_HUB_OFFLINE=1). */
  offline?: boolean;
  /** Ask the hub for the revision's current commit even when a complete snapshot is cached. */
  refresh?: boolean;
  /** Download progress, all files together. */
  onProgress?: (progress: DownloadProgress) => void;
  signal?: AbortSignal;
  fetch?: typeof fetch;
  env?: NodeJS.ProcessEnv;
}

export interface DownloadProgress {
  repo: string;
  /** The file being transferred. */
  file: string;
  downloadedBytes: number;
  totalBytes: number;
}

export interface ResolvedModel {
  /** What the loader opens: a checkpoint directory or a .gguf file. */
  path: string;
  format: ModelFormat;
  /** The model's default id for a hub model: the hub id (owner/name[:QUANT]); a local path leaves it to the loader. */
  id?: string;
  hub?: { repo: string; quant?: string; revision: string; commit: string; downloadedBytes: number };
}

/** Turns a directory, a .gguf file or a hub id into local files, downloading what is missing. */
export async function resolveModel(spec: string, options: HubOptions = {}): Promise<ResolvedModel> {
  if (existsSync(spec)) {
    const resolved = path.resolve(spec);
    const isFile = statSync(resolved).isFile();
    return { path: resolved, format: isFile && resolved.endsWith('.gguf') ? 'gguf' : 'safetensors' };
  }
  const hubId = looksLikePath(spec) ? null : parseHubId(spec);
  if (hubId === null) throw new HubError(modelSpecProblem(spec), true);
  return resolveHubModel(hubId, options);
}

/** The id a model goes by unless named otherwise: the hub id as typed, or the directory/file name lower-cased. */
export function defaultModelId(spec: string): string {
  if (!existsSync(spec) && parseHubId(spec) !== null) return spec;
  return path.basename(path.resolve(spec)).replace(/\.gguf$/, '').toLowerCase();
}

/** Why `spec` names no model, and what a model argument may be. */
export function modelSpecProblem(spec: string): string {
  const what = looksLikePath(spec) ? `no such directory or file: ${spec}` : `'${spec}' is not a model`;
  return `${what}; expected a checkpoint directory (with config.json), a .gguf file, or a Hugging Face id such as Qwen/Qwen3-0.6B or Qwen/Qwen3-8B-GGUF:Q4_K_M`;
}

function looksLikePath(spec: string): boolean {
  return /^(\.{1,2}(\/|$)|\/|~)/.test(spec) || spec.endsWith('.gguf') || spec.includes('\\') || spec.split('/').length > 2;
}

export async function resolveHubModel(id: HubModelId, options: HubOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  const revision = options.revision ?? 'main';
  const cache = new RepoCache(options.cacheDir ?? hubCacheDir(env), id.repo);
  const offline = options.offline ?? isTrue(env.HF_HUB_OFFLINE);
  const label = formatHubId(id);

  if (!options.refresh || offline) {
    const commit = cache.commitOf(revision);
    const found = commit === null ? null : cachedSelection(cache, commit, id);
    if (found !== null && found.missing.length === 0) return resolved(cache, id, revision, commit!, found.selection, 0);
    if (offline) {
      const why =
        commit === null
          ? `no snapshot of revision '${revision}' is cached`
          : found === null
            ? `the cached snapshot ${commit.slice(0, 12)} holds no loadable model`
            : `the cached snapshot ${commit.slice(0, 12)} lacks ${found.missing.join(', ')}`;
      throw new HubError(`HF_HUB_OFFLINE is set and ${label} is not fully in the cache (${cache.dir}): ${why}; unset HF_HUB_OFFLINE to download it`, true);
    }
  }

  const token = options.token ?? (env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined);
  if (token !== undefined && !token.startsWith('hf_')) throw new HubError('the hub token (HF_TOKEN or --hf-token) must start with hf_', true);
  const client: HubClient = {
    endpoint: (options.endpoint ?? (env.HF_ENDPOINT || DEFAULT_ENDPOINT)).replace(/\/+$/, ''),
    token,
    fetch: options.fetch ?? fetch,
  };
  const info = await repoInfo(client, id.repo, revision);
  const selection = selectFiles(id.repo, info.files, id.quant);
  const downloader = new SnapshotDownloader(client, cache, id.repo, info.commit, options);
  const files = [...selection.files];
  if (selection.indexed) {
    await downloader.fetchSmall(SAFETENSORS_INDEX);
    const shards = shardsOfIndex(readFileSync(cache.filePath(info.commit, SAFETENSORS_INDEX), 'utf8'), `${id.repo}/${SAFETENSORS_INDEX}`);
    const absent = shards.filter((s) => !info.files.includes(s));
    if (absent.length > 0) throw new HubError(`${id.repo}: ${SAFETENSORS_INDEX} names ${absent.join(', ')}, which the repository does not have`, false);
    files.push(...shards);
  }
  const downloaded = await downloader.fetchAll(files);
  cache.writeRef(revision, info.commit);
  return resolved(cache, id, revision, info.commit, selection, downloaded);
}

/** The selection a cached snapshot satisfies (the files it lacks, if any), or null when it has no model. */
function cachedSelection(cache: RepoCache, commit: string, id: HubModelId): { selection: FileSelection; missing: string[] } | null {
  const dir = cache.snapshotDir(commit);
  if (!existsSync(dir)) return null;
  let selection: FileSelection;
  try {
    selection = selectFiles(id.repo, snapshotFiles(dir), id.quant);
  } catch {
    return null;
  }
  // Without a tag the hub's default (Q4_K_M) is meant, which another cached quantization does not stand for.
  if (selection.format === 'gguf' && id.quant === undefined && quantOf(selection.entry) !== DEFAULT_QUANT)
    return { selection, missing: [`a ${DEFAULT_QUANT} GGUF file (name a cached one with ${id.repo}:TAG)`] };
  const needed = [...selection.files];
  if (selection.indexed && cache.hasFile(commit, SAFETENSORS_INDEX)) {
    try {
      needed.push(...shardsOfIndex(readFileSync(cache.filePath(commit, SAFETENSORS_INDEX), 'utf8'), SAFETENSORS_INDEX));
    } catch {
      return null;
    }
  }
  return { selection, missing: needed.filter((f) => !cache.hasFile(commit, f)) };
}

function resolved(cache: RepoCache, id: HubModelId, revision: string, commit: string, selection: FileSelection, downloadedBytes: number): ResolvedModel {
  const dir = cache.snapshotDir(commit);
  return {
    path: selection.entry === '' ? dir : cache.filePath(commit, selection.entry),
    format: selection.format,
    id: formatHubId(id),
    hub: { repo: id.repo, quant: id.quant, revision, commit, downloadedBytes },
  };
}

/** Fetches files of one commit into the cache, reporting progress over all of them. */
class SnapshotDownloader {
  #done = 0;
  #total = 0;

  constructor(
    readonly client: HubClient,
    readonly cache: RepoCache,
    readonly repo: string,
    readonly commit: string,
    readonly options: HubOptions,
  ) {}

  /** One small file, before the total is known (the safetensors index). */
  async fetchSmall(file: string): Promise<void> {
    if (this.cache.hasFile(this.commit, file)) return;
    await this.#fetch(file, await fileMetadata(this.client, this.repo, this.commit, file), () => {});
  }

  /** Every file not cached yet; resolves to the bytes transferred. */
  async fetchAll(files: string[]): Promise<number> {
    const toFetch: [string, FileMetadata][] = [];
    for (const file of files) {
      if (this.cache.hasFile(this.commit, file)) continue;
      const meta = await fileMetadata(this.client, this.repo, this.commit, file);
      if (existsSync(this.cache.blobPath(meta.etag))) this.cache.link(this.commit, file, meta.etag); // same bytes under another commit
      else toFetch.push([file, meta]);
    }
    this.#total = toFetch.reduce((sum, [, meta]) => sum + meta.size, 0);
    for (const [file, meta] of toFetch) {
      await this.#fetch(file, meta, (bytes) => {
        this.#done += bytes;
        this.options.onProgress?.({ repo: this.repo, file, downloadedBytes: this.#done, totalBytes: this.#total });
      });
    }
    return this.#done;
  }

  async #fetch(file: string, meta: FileMetadata, onBytes: (bytes: number) => void): Promise<void> {
    await downloadBlob({
      url: meta.url,
      headers: meta.sameOrigin ? authHeaders(this.client) : {},
      fetch: this.client.fetch,
      blobPath: this.cache.blobPath(meta.etag),
      size: meta.size,
      check: meta.check,
      etag: meta.etag,
      label: `${this.repo}/${file}`,
      onBytes,
      signal: this.options.signal,
    });
    this.cache.link(this.commit, file, meta.etag);
  }
}

function isTrue(value: string | undefined): boolean {
  return value !== undefined && /^(1|true|yes|on)$/i.test(value.trim());
}
