// The Hugging Face cache exactly as the Python tools lay it out, so a model pulled by vLLM or
// transformers is found here and one pulled here is found there:
//   <cache>/models--Owner--Name/blobs/<etag>                 the bytes (sha256 for LFS files, git sha1 else)
//   <cache>/models--Owner--Name/blobs/<etag>.incomplete      a download in progress (resumed from its length)
//   <cache>/models--Owner--Name/snapshots/<commit>/<path>    relative symlinks to blobs
//   <cache>/models--Owner--Name/refs/<revision>              the commit a branch or tag pointed to
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const COMMIT_HASH = /^[0-9a-f]{40}$/;

/** HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HF_HUB_CACHE) return env.HF_HUB_CACHE;
  if (env.HUGGINGFACE_HUB_CACHE) return env.HUGGINGFACE_HUB_CACHE;
  if (env.HF_HOME) return path.join(env.HF_HOME, 'hub');
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'huggingface', 'hub');
}

/** models--Owner--Name */
export function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}

/** Owner/Name of a models--Owner--Name folder, or null for other folders (datasets--, .locks …). */
export function repoOfFolder(folder: string): string | null {
  if (!folder.startsWith('models--')) return null;
  const parts = folder.slice('models--'.length).split('--');
  return parts.length === 2 ? parts.join('/') : null;
}

export class RepoCache {
  readonly dir: string;

  constructor(
    readonly cacheDir: string,
    readonly repo: string,
  ) {
    this.dir = path.join(cacheDir, repoFolderName(repo));
  }

  /** The commit `revision` names: itself when a commit hash, else what refs/<revision> records (null if unknown). */
  commitOf(revision: string): string | null {
    if (COMMIT_HASH.test(revision)) return revision;
    const ref = path.join(this.dir, 'refs', revision);
    if (!existsSync(ref)) return null;
    const commit = readFileSync(ref, 'utf8').trim();
    return COMMIT_HASH.test(commit) ? commit : null;
  }

  writeRef(revision: string, commit: string): void {
    if (revision === commit) return;
    const ref = path.join(this.dir, 'refs', revision);
    mkdirSync(path.dirname(ref), { recursive: true });
    writeFileSync(ref, commit);
  }

  snapshotDir(commit: string): string {
    return path.join(this.dir, 'snapshots', commit);
  }

  /** The snapshot path of `file`; it exists only when its blob is complete (the link is made last). */
  filePath(commit: string, file: string): string {
    return path.join(this.snapshotDir(commit), ...file.split('/'));
  }

  hasFile(commit: string, file: string): boolean {
    return existsSync(this.filePath(commit, file)); // follows the link: a dangling one is absent
  }

  blobPath(etag: string): string {
    return path.join(this.dir, 'blobs', etag);
  }

  /** Points snapshots/<commit>/<file> at blobs/<etag> with a relative link, as huggingface_hub does. */
  link(commit: string, file: string, etag: string): string {
    const pointer = this.filePath(commit, file);
    mkdirSync(path.dirname(pointer), { recursive: true });
    const target = path.relative(path.dirname(pointer), this.blobPath(etag));
    if (isLink(pointer) && readlinkSync(pointer) === target) return pointer;
    // Link under a temporary name, then rename over any old pointer: a reader never sees a half-made one.
    const temporary = `${pointer}.${process.pid}.tmp`;
    rmSync(temporary, { force: true });
    symlinkSync(target, temporary);
    renameSync(temporary, pointer);
    return pointer;
  }
}

/** Repo-relative paths of a snapshot's files whose blobs are complete (a dangling link is absent). */
export function snapshotFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...snapshotFiles(full, `${prefix}${entry.name}/`));
    else if (existsSync(full) && statSync(full).isFile()) out.push(prefix + entry.name);
  }
  return out;
}

function isLink(file: string): boolean {
  return lstatSync(file, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
}
