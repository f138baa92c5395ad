// `paralon serve --model Qwen/Qwen3-0.6B` fetching from a loopback hub and serving through the
// official openai client; `paralon pull`, `ls`, `rm`; and loadModel('Qwen/Qwen3-0.6B') in the library.
// The "Qwen/Qwen3-0.6B" of the mock holds the demo model's files.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, writeDemoModel } from '../../src/index.js';
import { MockHub } from './mock-hub.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const work = mkdtempSync(path.join(os.tmpdir(), 'paralon-hub-cli-'));
const cacheDir = path.join(work, 'hf-cache');
let hub: MockHub;
let env: Record<string, string>;

beforeAll(async () => {
  const dir = path.join(work, 'demo');
  writeDemoModel(dir);
  const files = Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(path.join(dir, f))]));
  hub = await new MockHub().start();
  hub.addRepo('Qwen/Qwen3-0.6B', files);
  env = { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cacheDir, PARALON_DATA_DIR: path.join(work, 'data') };
});
afterAll(async () => {
  await hub.stop();
  rmSync(work, { recursive: true, force: true });
});

/** The CLI as a child process; asynchronous, so this process's mock hub keeps answering. */
function paralon(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('hub models from the command line', () => {
  it('serve --model Qwen/Qwen3-0.6B downloads the model and serves it under that id', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--model', 'Qwen/Qwen3-0.6B', '--port', '0', '--device', 'cpu', '--kv-cache-memory', '16MiB'], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 90_000;
    let match: RegExpMatchArray | null = null;
    while (!((match = stderr.match(/API at (http:\/\/127\.0\.0\.1:\d+\/v1)/)) && /API keys: /.test(stderr)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(match, stderr).not.toBeNull();
    // Progress as plain lines (stderr is a pipe), ending at 100 %.
    expect(stderr).toMatch(/downloading Qwen\/Qwen3-0\.6B: 100% \([\d.]+ MiB \/ [\d.]+ MiB, .*\/s, in [\d.]+s\)/);
    expect(stderr).toMatch(/Paralon is serving 'Qwen\/Qwen3-0\.6B' on cpu/);
    const client = new OpenAI({ baseURL: match![1], apiKey: 'none', maxRetries: 0 });
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(['Qwen/Qwen3-0.6B']);
    const r = await client.chat.completions.create({ model: 'Qwen/Qwen3-0.6B', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
    expect(r.usage?.completion_tokens).toBe(3);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(hub.requests.some((q) => q.url.endsWith('README.md'))).toBe(false);
  });

  it('pull finds it up to date, ls lists it, the library loads it offline, rm deletes it', async () => {
    const pulled = await paralon(['pull', 'Qwen/Qwen3-0.6B']);
    expect(pulled.code, pulled.stderr).toBe(0);
    expect(pulled.stdout).toMatch(/^Qwen\/Qwen3-0\.6B @ main \([0-9a-f]{12}\): already up to date\n.*snapshots\/[0-9a-f]{40}\n$/);

    const listed = await paralon(['ls']);
    expect(listed.stdout).toMatch(/^ID\s+REVISION\s+SIZE\s+FORMAT\s+PATH\nQwen\/Qwen3-0\.6B\s+main\s+\d+(\.\d+)? MiB\s+safetensors\s+\S+hf-cache\/models--Qwen--Qwen3-0\.6B\/snapshots\/[0-9a-f]{40}\n$/);

    const before = hub.requests.length;
    const model = await loadModel('Qwen/Qwen3-0.6B', { device: 'cpu', threads: 1, kvCacheMemory: 8 * 2 ** 20, maxModelLen: 128, hub: { cacheDir, offline: true } });
    try {
      expect(model.id).toBe('Qwen/Qwen3-0.6B');
      let text = '';
      for await (const e of model.complete('Hello', { maxTokens: 2, seed: 1 })) if (e.type === 'delta') text += e.text;
      expect(text.length).toBeGreaterThan(0);
    } finally {
      model.dispose();
    }
    expect(hub.since(before)).toEqual([]);

    expect((await paralon(['pull', 'not a model'])).code).toBe(2);
    const unknown = await paralon(['pull', 'Qwen/Qwen3-0.6C']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^paralon: no model 'Qwen\/Qwen3-0\.6C' on http:\/\/127\.0\.0\.1:\d+ .*models with a similar name: Qwen\/Qwen3-0\.6B\n$/);
    const removed = await paralon(['rm', 'Qwen/Qwen3-0.6B']);
    expect(removed.stdout).toMatch(/^Removed Qwen\/Qwen3-0\.6B \([\d.]+ MiB freed\)\.\n$/);
    expect((await paralon(['ls'])).stdout).toMatch(/^No models in /);
    expect((await paralon(['rm', 'Qwen/Qwen3-0.6B'])).code).toBe(2);
  });
});
