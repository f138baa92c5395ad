// What the Hugging Face cache holds, as `paralon ls` shows it (one row per loadable model: a
// safetensors checkpoint, or one GGUF quantization), and `paralon rm`, which deletes a repository or
// one quantization of it (blobs no other snapshot links to go with it).
import { existsSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { hubCacheDir, RepoCache, repoOfFolder, snapshotFiles } from './cache.js';
import { HubError } from './errors.js';
import { formatHubId, type HubModelId } from './model-id.js';
import { quantOf } from './select-files.js';

export interface CachedModel {
  /** owner/name, or owner/name:QUANT for a GGUF file */
  id: string;
  /** Branches and tags that point at this snapshot, else the short commit. */
  revision: string;
  commit: string;
  sizeBytes: number;
  format: 'safetensors' | 'gguf';
  /** What the loader opens. */
  path: string;
}

export function listCachedModels(cacheDir: string = hubCacheDir()): CachedModel[] {
  if (!existsSync(cacheDir)) return [];
  const out: CachedModel[] = [];
  for (const folder of readdirSync(cacheDir).sort()) {
    const repo = repoOfFolder(folder);
    if (repo === null) continue;
    const cache = new RepoCache(cacheDir, repo);
    const snapshots = path.join(cache.dir, 'snapshots');
    if (!existsSync(snapshots)) continue;
    const refs = readRefs(path.join(cache.dir, 'refs'));
    for (const commit of readdirSync(snapshots).sort()) {
      const dir = cache.snapshotDir(commit);
      const files = snapshotFiles(dir);
      const revision = refs.filter(([, c]) => c === commit).map(([name]) => name).join(',') || commit.slice(0, 12);
      const ggufs = files.filter((f) => f.endsWith('.gguf') && !/mmproj/i.test(f));
      const byQuant = new Map<string, string[]>();
      for (const f of ggufs) {
        const quant = quantOf(f) ?? path.basename(f, '.gguf');
        byQuant.set(quant, [...(byQuant.get(quant) ?? []), f]);
      }
      for (const [quant, parts] of [...byQuant].sort()) {
        out.push({ id: formatHubId({ repo, quant }), revision, commit, sizeBytes: sizeOf(dir, parts), format: 'gguf', path: path.join(dir, parts.sort()[0]) });
      }
      const rest = files.filter((f) => !f.endsWith('.gguf'));
      if (rest.some((f) => f.endsWith('.safetensors'))) out.push({ id: repo, revision, commit, sizeBytes: sizeOf(dir, rest), format: 'safetensors', path: dir });
    }
  }
  return out;
}

/** Deletes a cached repository (every revision), or with a quant tag only that GGUF quantization. Returns the bytes freed. */
export function removeCachedModel(id: HubModelId, cacheDir: string = hubCacheDir()): number {
  const cache = new RepoCache(cacheDir, id.repo);
  if (!existsSync(cache.dir)) throw new HubError(`${id.repo} is not in the cache (${cacheDir}); \`paralon ls\` lists what is`, true);
  if (id.quant === undefined) {
    const bytes = dirSize(cache.dir);
    rmSync(cache.dir, { recursive: true, force: true });
    return bytes;
  }
  const snapshots = path.join(cache.dir, 'snapshots');
  const doomed: string[] = [];
  const kept = new Set<string>();
  for (const commit of existsSync(snapshots) ? readdirSync(snapshots) : []) {
    const dir = cache.snapshotDir(commit);
    for (const f of snapshotFiles(dir)) {
      const blob = realpathSync(path.join(dir, f));
      if (f.endsWith('.gguf') && quantOf(f) === id.quant.toUpperCase()) doomed.push(path.join(dir, f));
      else kept.add(blob);
    }
  }
  if (doomed.length === 0) throw new HubError(`no ${id.quant} GGUF of ${id.repo} is in the cache; \`paralon ls\` lists what is`, true);
  let bytes = 0;
  for (const link of doomed) {
    const blob = realpathSync(link);
    rmSync(link);
    if (!kept.has(blob) && existsSync(blob)) {
      bytes += statSync(blob).size;
      rmSync(blob);
    }
  }
  return bytes;
}

function readRefs(dir: string, prefix = ''): [string, string][] {
  if (!existsSync(dir)) return [];
  const out: [string, string][] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...readRefs(full, `${prefix}${entry.name}/`));
    else out.push([prefix + entry.name, readFileSync(full, 'utf8').trim()]);
  }
  return out;
}

function sizeOf(dir: string, files: string[]): number {
  const blobs = new Map<string, number>();
  for (const f of files) {
    const full = path.join(dir, f);
    blobs.set(realpathSync(full), statSync(full).size);
  }
  return [...blobs.values()].reduce((a, b) => a + b, 0);
}

function dirSize(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) bytes += dirSize(full);
    else if (entry.isFile()) bytes += statSync(full).size;
  }
  return bytes;
}
