// One file from the hub into blobs/<etag>: bytes go to blobs/<etag>.incomplete (the name huggingface_hub
// also resumes from), an interrupted transfer continues with an HTTP Range request from the length
// already there, the whole file is hashed (sha256 for LFS files, whose etag is their sha256; the git
// blob sha1 for small files) and only a file of the right size and hash is renamed into place. A
// mismatch deletes the partial file, so nothing half-written is ever used.
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { HubError } from './errors.js';

export interface BlobDownload {
  /** The URL to GET (a resolve URL, or the CDN location it redirected to). */
  url: string;
  headers: Record<string, string>;
  fetch: typeof fetch;
  /** blobs/<etag> */
  blobPath: string;
  /** The file's size in bytes as the hub reported it. */
  size: number;
  /** What the etag is the hash of: the content (LFS, sha256) or the git blob (sha1); null: no check. */
  check: 'sha256' | 'git-sha1' | null;
  etag: string;
  /** For messages: repo/path. */
  label: string;
  /** Bytes written since the last call (resumed bytes are reported once at the start). */
  onBytes: (bytes: number) => void;
  signal?: AbortSignal;
  /** Transfers retried after a dropped connection (each resumes where the last stopped). */
  retries?: number;
}

const RETRY_DELAY_MS = [250, 1000, 3000, 5000, 10000];

/** Downloads (or resumes) the blob; resolves once blobs/<etag> holds the verified file. */
export async function downloadBlob(d: BlobDownload): Promise<void> {
  if (existsSync(d.blobPath)) return;
  mkdirSync(path.dirname(d.blobPath), { recursive: true });
  const incomplete = `${d.blobPath}.incomplete`;
  const retries = d.retries ?? RETRY_DELAY_MS.length;
  let reported = 0;
  for (let attempt = 0; ; attempt++) {
    try {
      reported = await transferOnce(d, incomplete, reported);
      break;
    } catch (e) {
      if (e instanceof HubError || d.signal?.aborted || attempt >= retries) throw wrapNetworkError(e, d);
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS[Math.min(attempt, RETRY_DELAY_MS.length - 1)]));
    }
  }
  const have = statSync(incomplete).size;
  if (have !== d.size) {
    rmSync(incomplete, { force: true });
    throw new HubError(`${d.label}: received ${have} bytes, the hub said ${d.size}; the partial file was deleted, run again`, false);
  }
  if (d.check !== null) {
    const digest = await hashFile(incomplete, d.check, d.size);
    if (digest !== d.etag) {
      rmSync(incomplete, { force: true });
      throw new HubError(`${d.label}: the ${d.check} of the downloaded bytes is ${digest}, the hub says ${d.etag}; the corrupted file was deleted, run again`, false);
    }
  }
  renameSync(incomplete, d.blobPath);
}

/** One HTTP transfer appended to `incomplete`; returns the bytes reported so far. */
async function transferOnce(d: BlobDownload, incomplete: string, reported: number): Promise<number> {
  const have = existsSync(incomplete) ? statSync(incomplete).size : 0;
  if (have > d.size) rmSync(incomplete); // not this file: start over
  const from = have > d.size ? 0 : have;
  if (from === d.size && d.size > 0) return report(d, reported, from);
  const headers: Record<string, string> = { ...d.headers, 'Accept-Encoding': 'identity' };
  if (from > 0) headers.Range = `bytes=${from}-`;
  const res = await d.fetch(d.url, { headers, redirect: 'follow', signal: d.signal });
  let offset: number;
  if (res.status === 206 && from > 0 && rangeStart(res.headers.get('content-range')) === from) offset = from;
  else if (res.status === 200) offset = 0; // the server ignored the Range: start over
  else {
    await res.body?.cancel();
    throw new HubError(`${d.label}: the download answered HTTP ${res.status} ${res.statusText}`.trimEnd(), false);
  }
  if (res.body === null) throw new HubError(`${d.label}: the download answered without a body`, false);
  reported = report(d, reported, offset);
  const file = await open(incomplete, offset === 0 ? 'w' : 'a');
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      await file.write(chunk);
      d.onBytes(chunk.length);
      reported += chunk.length;
    }
  } finally {
    await file.close();
  }
  return reported;
}

/** Tells the caller about bytes already on disk it has not counted yet (or un-counts a restart). */
function report(d: BlobDownload, reported: number, onDisk: number): number {
  if (onDisk !== reported) d.onBytes(onDisk - reported);
  return onDisk;
}

function rangeStart(contentRange: string | null): number | null {
  const m = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(contentRange ?? '');
  return m === null ? null : Number(m[1]);
}

async function hashFile(file: string, kind: 'sha256' | 'git-sha1', size: number): Promise<string> {
  const hash: Hash = createHash(kind === 'sha256' ? 'sha256' : 'sha1');
  if (kind === 'git-sha1') hash.update(`blob ${size}\0`);
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function wrapNetworkError(e: unknown, d: BlobDownload): Error {
  if (e instanceof HubError || d.signal?.aborted) return e as Error;
  const cause = (e as { cause?: { message?: string } }).cause?.message;
  const message = (e as Error).message + (cause ? ` (${cause})` : '');
  return new HubError(`${d.label}: the download failed: ${message}; run again to resume from the bytes already saved`, false);
}
