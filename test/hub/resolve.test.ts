// Hub ids → local files against a loopback mock of the hub: the Python cache layout written and read,
// only the needed files fetched, no request when cached, offline mode, resume after a cut connection,
// hash verification, gated/unknown repos and quant tags explained.
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { HubError, listCachedModels, removeCachedModel, resolveModel, type DownloadProgress, type HubOptions } from '../../src/hub/index.js';
import { gitSha1, MockHub, sha256 } from './mock-hub.js';

const bytes = (n: number, seed: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + (i >> 8)) & 0xff));
const text = (s: string) => Buffer.from(s);

const SHARDS = { 'model-00001-of-00002.safetensors': bytes(70_001, 1), 'model-00002-of-00002.safetensors': bytes(50_003, 2) };
const SHARDED = {
  'config.json': text('{"architectures":["Qwen3ForCausalLM"]}'),
  'generation_config.json': text('{"temperature":0.6}'),
  'tokenizer.json': text('{"model":{}}'),
  'tokenizer_config.json': text('{}'),
  'model.safetensors.index.json': text(JSON.stringify({ metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } })),
  ...SHARDS,
  'README.md': text('# not needed'),
  'original/consolidated.pth': bytes(999, 3),
  'onnx/model.onnx': bytes(777, 4),
};
const GGUFS = {
  'Qwen3-8B-Q4_K_M.gguf': bytes(30_011, 5),
  'Qwen3-8B-Q8_0.gguf': bytes(40_013, 6),
  'Qwen3-8B-BF16-00001-of-00002.gguf': bytes(20_017, 7),
  'Qwen3-8B-BF16-00002-of-00002.gguf': bytes(20_019, 8),
  'mmproj-Qwen3-8B-F16.gguf': bytes(1000, 9),
  'README.md': text('# gguf'),
};

let hub: MockHub;
let cacheDir: string;

beforeAll(async () => {
  hub = await new MockHub().start();
  hub.addRepo('Qwen/Sharded', SHARDED);
  hub.addRepo('Qwen/Qwen3-8B-GGUF', GGUFS);
  hub.addRepo('Qwen/Gated', { ...SHARDED }, { gated: true });
  hub.addRepo('Qwen/Single', { 'config.json': text('{}'), 'tokenizer.json': text('{}'), 'tokenizer_config.json': text('{}'), 'model.safetensors': bytes(64_007, 10) });
});
afterAll(() => hub.stop());
beforeEach(() => {
  if (cacheDir) rmSync(cacheDir, { recursive: true, force: true });
  cacheDir = mkdtempSync(path.join(os.tmpdir(), 'paralon-hub-'));
});
afterAll(() => rmSync(cacheDir, { recursive: true, force: true }));

const opts = (extra: HubOptions = {}): HubOptions => ({ cacheDir, endpoint: hub.endpoint, env: {}, ...extra });
const repoDir = (repo: string) => path.join(cacheDir, `models--${repo.replace('/', '--')}`);

describe('downloading into the Hugging Face cache', () => {
  it('fetches only the files a safetensors model needs, in the Python layout, with progress', async () => {
    const events: DownloadProgress[] = [];
    const model = await resolveModel('Qwen/Sharded', opts({ onProgress: (p) => events.push(p) }));
    const commit = hub.repos.get('Qwen/Sharded')!.commit;
    const snapshot = path.join(repoDir('Qwen/Sharded'), 'snapshots', commit);
    expect(model).toMatchObject({ path: snapshot, format: 'safetensors', id: 'Qwen/Sharded', hub: { commit, revision: 'main' } });
    expect(readFileSync(path.join(repoDir('Qwen/Sharded'), 'refs', 'main'), 'utf8')).toBe(commit);
    const wanted = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors.index.json', ...Object.keys(SHARDS)];
    expect(readdirSync(snapshot).sort()).toEqual(wanted.sort());
    for (const file of wanted) {
      // Relative links into blobs/, named by the etag: sha256 for LFS files, the git blob sha1 otherwise.
      const link = path.join(snapshot, file);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      const etag = file.endsWith('.safetensors') ? sha256(SHARDED[file as keyof typeof SHARDED]) : gitSha1(SHARDED[file as keyof typeof SHARDED]);
      expect(readlinkSync(link)).toBe(`../../blobs/${etag}`);
      expect(readFileSync(link).equals(SHARDED[file as keyof typeof SHARDED])).toBe(true);
    }
    expect(hub.requests.some((r) => /README|onnx|original/.test(r.url))).toBe(false);
    // The index is fetched (and read) before the total is known; everything else is counted.
    const counted = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', ...Object.keys(SHARDS)];
    const total = counted.reduce((sum, f) => sum + SHARDED[f as keyof typeof SHARDED].length, 0);
    expect(events.at(-1)).toMatchObject({ downloadedBytes: total, totalBytes: total });
    for (let i = 1; i < events.length; i++) expect(events[i].downloadedBytes).toBeGreaterThanOrEqual(events[i - 1].downloadedBytes);
    expect(model.hub!.downloadedBytes).toBe(total);
  });

  it('makes no request the second time, and pull (refresh) asks only for the commit and metadata', async () => {
    await resolveModel('Qwen/Sharded', opts());
    const before = hub.requests.length;
    const again = await resolveModel('Qwen/Sharded', opts());
    expect(hub.since(before)).toEqual([]);
    expect(again.hub!.downloadedBytes).toBe(0);
    const refreshed = await resolveModel('Qwen/Sharded', opts({ refresh: true }));
    expect(hub.since(before).map((r) => r.url)).toEqual([expect.stringMatching(/^\/api\/models\/Qwen\/Sharded\/revision\/main$/)]);
    expect(refreshed.path).toBe(again.path);
  });

  it('honours HF_HUB_OFFLINE=1: the cache only, a clear error for what is missing', async () => {
    const before = hub.requests.length;
    await expect(resolveModel('Qwen/Single', opts({ env: { HF_HUB_OFFLINE: '1' } }))).rejects.toThrow(/HF_HUB_OFFLINE is set and Qwen\/Single is not fully in the cache/);
    expect(hub.since(before)).toEqual([]);
    await resolveModel('Qwen/Single', opts());
    const mark = hub.requests.length;
    const model = await resolveModel('Qwen/Single', opts({ env: { HF_HUB_OFFLINE: '1' }, refresh: true }));
    expect(existsSync(path.join(model.path, 'model.safetensors'))).toBe(true);
    expect(hub.since(mark)).toEqual([]);
  });

  it('reads HF_ENDPOINT, HF_HUB_CACHE and HF_TOKEN from the environment', async () => {
    const env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cacheDir, HF_TOKEN: hub.token };
    const model = await resolveModel('Qwen/Gated', { env });
    expect(model.path.startsWith(cacheDir)).toBe(true);
  });
});

describe('integrity', () => {
  it('resumes a connection cut mid-file with a Range request and ends byte-identical', async () => {
    const weights = hub.repos.get('Qwen/Single')!.files['model.safetensors'];
    hub.cutAfter.set(sha256(weights), 20_000);
    const before = hub.requests.length;
    const model = await resolveModel('Qwen/Single', opts());
    expect(readFileSync(path.join(model.path, 'model.safetensors')).equals(weights)).toBe(true);
    const cdn = hub.since(before).filter((r) => r.url.startsWith('/cdn/'));
    expect(cdn.length).toBe(2);
    expect(cdn[0].range).toBeUndefined();
    expect(cdn[1].range).toMatch(/^bytes=(\d+)-$/);
    expect(Number(/\d+/.exec(cdn[1].range!)![0])).toBeGreaterThan(0);
  });

  it('resumes from an .incomplete file left by an earlier process', async () => {
    const weights = hub.repos.get('Qwen/Single')!.files['model.safetensors'];
    const blob = path.join(repoDir('Qwen/Single'), 'blobs', sha256(weights));
    mkdirSync(path.dirname(blob), { recursive: true });
    writeFileSync(`${blob}.incomplete`, weights.subarray(0, 12_345));
    const before = hub.requests.length;
    const model = await resolveModel('Qwen/Single', opts());
    expect(hub.since(before).find((r) => r.url.startsWith('/cdn/'))?.range).toBe('bytes=12345-');
    expect(readFileSync(path.join(model.path, 'model.safetensors')).equals(weights)).toBe(true);
    expect(existsSync(`${blob}.incomplete`)).toBe(false);
  });

  it('refuses a corrupted byte by the sha256 the hub reports and leaves nothing half-written', async () => {
    const weights = hub.repos.get('Qwen/Single')!.files['model.safetensors'];
    hub.corruptAt.set(sha256(weights), 33_333);
    try {
      const error = await resolveModel('Qwen/Single', opts()).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HubError);
      expect((error as Error).message).toMatch(/model\.safetensors: the sha256 of the downloaded bytes is [0-9a-f]{64}, the hub says [0-9a-f]{64}/);
      const blobs = path.join(repoDir('Qwen/Single'), 'blobs');
      expect(readdirSync(blobs).filter((f) => f.startsWith(sha256(weights)))).toEqual([]);
      const commit = hub.repos.get('Qwen/Single')!.commit;
      expect(existsSync(path.join(repoDir('Qwen/Single'), 'snapshots', commit, 'model.safetensors'))).toBe(false);
      expect(existsSync(path.join(repoDir('Qwen/Single'), 'refs', 'main'))).toBe(false);
    } finally {
      hub.corruptAt.clear();
    }
    const model = await resolveModel('Qwen/Single', opts());
    expect(readFileSync(path.join(model.path, 'model.safetensors')).equals(weights)).toBe(true);
  });
});

describe('the Python tools’ cache', () => {
  it('finds a snapshot laid out by huggingface_hub and uses it without a request', async () => {
    const commit = 'c'.repeat(40);
    const dir = repoDir('Qwen/FromPython');
    const files: Record<string, Buffer> = { 'config.json': text('{}'), 'tokenizer.json': text('{}'), 'tokenizer_config.json': text('{}'), 'model.safetensors': bytes(1000, 11) };
    mkdirSync(path.join(dir, 'blobs'), { recursive: true });
    mkdirSync(path.join(dir, 'snapshots', commit), { recursive: true });
    mkdirSync(path.join(dir, 'refs'), { recursive: true });
    for (const [name, data] of Object.entries(files)) {
      const etag = name.endsWith('.safetensors') ? sha256(data) : gitSha1(data);
      writeFileSync(path.join(dir, 'blobs', etag), data);
      symlinkSync(`../../blobs/${etag}`, path.join(dir, 'snapshots', commit, name));
    }
    writeFileSync(path.join(dir, 'refs', 'main'), commit);
    const before = hub.requests.length;
    const model = await resolveModel('Qwen/FromPython', opts());
    expect(model.path).toBe(path.join(dir, 'snapshots', commit));
    expect(hub.since(before)).toEqual([]);
    expect(listCachedModels(cacheDir)).toEqual([
      { id: 'Qwen/FromPython', revision: 'main', commit, sizeBytes: 1000 + 2 /* the three '{}' files share one blob */, format: 'safetensors', path: model.path },
    ]);
  });
});

describe('GGUF repositories', () => {
  it('picks the file of a quant tag, and Q4_K_M by default', async () => {
    const q8 = await resolveModel('Qwen/Qwen3-8B-GGUF:Q8_0', opts());
    expect(path.basename(q8.path)).toBe('Qwen3-8B-Q8_0.gguf');
    expect(q8).toMatchObject({ format: 'gguf', id: 'Qwen/Qwen3-8B-GGUF:Q8_0' });
    expect(readdirSync(path.dirname(q8.path))).toEqual(['Qwen3-8B-Q8_0.gguf']);
    const byDefault = await resolveModel('Qwen/Qwen3-8B-GGUF', opts());
    expect(path.basename(byDefault.path)).toBe('Qwen3-8B-Q4_K_M.gguf');
  });

  it('fetches every part of a split GGUF and lists, then removes, quantizations', async () => {
    const bf16 = await resolveModel('Qwen/Qwen3-8B-GGUF:bf16', opts());
    expect(path.basename(bf16.path)).toBe('Qwen3-8B-BF16-00001-of-00002.gguf');
    expect(readdirSync(path.dirname(bf16.path)).sort()).toEqual(['Qwen3-8B-BF16-00001-of-00002.gguf', 'Qwen3-8B-BF16-00002-of-00002.gguf']);
    await resolveModel('Qwen/Qwen3-8B-GGUF:Q8_0', opts());
    expect(listCachedModels(cacheDir).map((m) => [m.id, m.format, m.sizeBytes])).toEqual([
      ['Qwen/Qwen3-8B-GGUF:BF16', 'gguf', 40_036],
      ['Qwen/Qwen3-8B-GGUF:Q8_0', 'gguf', 40_013],
    ]);
    expect(removeCachedModel({ repo: 'Qwen/Qwen3-8B-GGUF', quant: 'Q8_0' }, cacheDir)).toBe(40_013);
    expect(listCachedModels(cacheDir).map((m) => m.id)).toEqual(['Qwen/Qwen3-8B-GGUF:BF16']);
    expect(removeCachedModel({ repo: 'Qwen/Qwen3-8B-GGUF' }, cacheDir)).toBeGreaterThanOrEqual(40_036);
    expect(listCachedModels(cacheDir)).toEqual([]);
    expect(() => removeCachedModel({ repo: 'Qwen/Qwen3-8B-GGUF' }, cacheDir)).toThrow(/not in the cache.*paralon ls/);
  });

  it('lists the quant tags that exist when the one asked for does not', async () => {
    await expect(resolveModel('Qwen/Qwen3-8B-GGUF:Q3_K_S', opts())).rejects.toThrow("Qwen/Qwen3-8B-GGUF has no GGUF file for the quant tag 'Q3_K_S'; it has BF16, Q4_K_M, Q8_0");
  });
});

describe('errors a person can act on', () => {
  it('says to set HF_TOKEN for a gated repo, and sends the token to the hub but not the CDN', async () => {
    const error = await resolveModel('Qwen/Gated', opts()).catch((e: Error) => e);
    expect(error).toBeInstanceOf(HubError);
    expect((error as Error).message).toMatch(/Qwen\/Gated is gated: accept its terms at .*, then set HF_TOKEN \(or pass --hf-token\)/);
    const before = hub.requests.length;
    await resolveModel('Qwen/Gated', opts({ token: hub.token }));
    const sent = hub.since(before);
    expect(sent.filter((r) => !r.url.startsWith('/cdn/')).every((r) => r.authorization === `Bearer ${hub.token}`)).toBe(true);
    expect(sent.filter((r) => r.url.startsWith('/cdn/')).every((r) => r.authorization === undefined)).toBe(true);
    await expect(resolveModel('Qwen/Gated', opts({ token: 'nope', refresh: true }))).rejects.toThrow('must start with hf_');
  });

  it('names similar models for an unknown repo, and an unknown revision', async () => {
    await expect(resolveModel('Qwen/Sharde', opts())).rejects.toThrow(
      /no model 'Qwen\/Sharde' on http:\/\/127\.0\.0\.1:\d+ \(if it is private or gated, set HF_TOKEN or pass --hf-token\); models with a similar name: Qwen\/Sharded/,
    );
    await expect(resolveModel('Qwen/Sharded', opts({ revision: 'v9' }))).rejects.toThrow("Qwen/Sharded has no revision 'v9'");
  });

  it('explains what a model argument may be', async () => {
    await expect(resolveModel('/tmp/paralon-no-such-dir', opts())).rejects.toThrow(
      'no such directory or file: /tmp/paralon-no-such-dir; expected a checkpoint directory (with config.json), a .gguf file, or a Hugging Face id such as Qwen/Qwen3-0.6B or Qwen/Qwen3-8B-GGUF:Q4_K_M',
    );
    await expect(resolveModel('qwen3', opts())).rejects.toThrow("'qwen3' is not a model; expected a checkpoint directory");
    await expect(resolveModel('Qwen/Qwen3-0.6B', opts({ endpoint: 'http://127.0.0.1:9' }))).rejects.toThrow(/cannot reach http:\/\/127\.0\.0\.1:9 .*HF_HUB_OFFLINE=1/);
  });
});
