// The `paralon` CLI as a user runs it (a child process): keys create / list / revoke, usage, and
// `serve` with flag > environment > default precedence, the banner, and a clean exit on SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { tempDir } from './fixture.js';
import { resolveServeConfig } from '../../src/server/serve.js';
import { openStore } from '../../src/server/store/open.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = tempDir('cli');
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

function paralon(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('paralon keys and usage', () => {
  it('creates a key shown once, lists it without the key, and revokes it', () => {
    const created = paralon(['keys', 'create', '--name', 'ci', '--data-dir', dataDir]);
    expect(created.code).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^prlc_[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toMatch(/only time the key is shown/);

    // The data directory also comes from the environment.
    const listed = paralon(['keys', 'list'], { PARALON_DATA_DIR: dataDir });
    expect(listed.code).toBe(0);
    expect(listed.stdout).toContain('ci');
    expect(listed.stdout).toContain(`prlc_…${key.slice(-4)}`);
    expect(listed.stdout).not.toContain(key);

    expect(paralon(['keys', 'revoke', 'nobody', '--data-dir', dataDir]).code).toBe(1);
    const revoked = paralon(['keys', 'revoke', 'ci', '--data-dir', dataDir]);
    expect(revoked.stdout).toMatch(/Revoked 1 key/);
    expect(paralon(['keys', 'list', '--data-dir', dataDir]).stdout).toMatch(/revoked/);
  });

  it('prints usage per day, key and model', async () => {
    expect(paralon(['usage', '--data-dir', dataDir]).stdout).toMatch(/No usage recorded/);
    const store = await openStore({ dataDir });
    const now = Date.now();
    const admission = await store.usage.admit({
      requestId: 'cli-test',
      keyId: null,
      limits: { rpm: null, tpm: null, maxConcurrent: null },
      model: 'm',
      endpoint: 'completions',
      promptTokens: 7,
      reservedTokens: 12,
      replicaId: 'test',
      now,
    });
    if (admission.admitted) await store.usage.complete(admission.rowId, { completionTokens: 5, finishedAt: now, finishReason: 'stop' });
    await store.close();
    const out = paralon(['usage', '--data-dir', dataDir]).stdout;
    expect(out).toMatch(new RegExp(`${new Date(now).toISOString().slice(0, 10)}\\s+\\(no key\\)\\s+m\\s+1\\s+7\\s+5\\s+12`));
  });

  it('creates a key with rate limits and changes them', () => {
    const created = paralon(['keys', 'create', '--name', 'limited', '--rpm', '5', '--max-concurrent', '2', '--data-dir', dataDir]);
    expect(created.code).toBe(0);
    expect(created.stderr).toMatch(/rpm 5, concurrent 2/);
    expect(paralon(['keys', 'limits', 'limited', '--rpm', 'none', '--tpm', '900', '--data-dir', dataDir]).stdout).toMatch(/Changed the limits of 1 key/);
    expect(paralon(['keys', 'list', '--data-dir', dataDir]).stdout).toMatch(/limited .* tpm 900, concurrent 2/);
    const bad = paralon(['keys', 'limits', 'limited', '--rpm', '0', '--data-dir', dataDir]);
    expect(bad.code).toBe(2); // bad usage
    expect(bad.stderr).toMatch(/--rpm must be a positive integer or 'none', got '0'/);
  });

  it('names the database it cannot reach, without its password', () => {
    const r = paralon(['keys', 'list'], { PARALON_DATABASE_URL: 'postgres://paralon:s3cret@127.0.0.1:1/paralon' });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/the PostgreSQL database postgres:\/\/paralon:\*\*\*@127\.0\.0\.1:1\/paralon: .*ECONNREFUSED/);
    expect(r.stderr).not.toContain('s3cret');
    const scheme = paralon(['usage', '--database', 'mysql://x', '--data-dir', dataDir]);
    expect(scheme.stderr).toMatch(/must be a postgres:\/\/ or postgresql:\/\/ URL/);
  });

  it('rejects bad arguments with a message and exit code 2', () => {
    const bad = paralon(['serve', '--port', 'eighty', '--data-dir', dataDir]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--port \(PARALON_PORT\) must be an integer/);
    expect(paralon(['serve', '--no-such-flag']).code).toBe(2);
    expect(paralon(['frobnicate']).code).toBe(2);
  });
});

describe('serve settings', () => {
  it('reads --rope-scaling as a JSON object (or null), flag over PARALON_ROPE_SCALING', () => {
    const yarn = { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32768 };
    expect(resolveServeConfig({ 'rope-scaling': JSON.stringify(yarn) }, {}).ropeScaling).toEqual(yarn);
    expect(resolveServeConfig({}, { PARALON_ROPE_SCALING: 'null' }).ropeScaling).toBeNull();
    expect(resolveServeConfig({}, {}).ropeScaling).toBeUndefined();
    expect(() => resolveServeConfig({ 'rope-scaling': '{yarn' }, {})).toThrow(/--rope-scaling must be JSON/);
    expect(() => resolveServeConfig({ 'rope-scaling': '[4]' }, {})).toThrow(/--rope-scaling must be a JSON object or null/);
  });
  it('reads --cpu-precision exact|fast (PARALON_CPU_PRECISION), default undefined (exact)', () => {
    expect(resolveServeConfig({ 'cpu-precision': 'fast' }, {}).cpuPrecision).toBe('fast');
    expect(resolveServeConfig({}, { PARALON_CPU_PRECISION: 'exact' }).cpuPrecision).toBe('exact');
    expect(resolveServeConfig({}, {}).cpuPrecision).toBeUndefined();
    expect(() => resolveServeConfig({ 'cpu-precision': 'bf16' }, {})).toThrow(/--cpu-precision must be exact or fast/);
  });
});

describe('paralon serve', () => {
  it('serves the demo model, needs the key that exists, and exits 0 on SIGTERM', async () => {
    const key = paralon(['keys', 'create', '--name', 'serve', '--data-dir', dataDir]).stdout.trim();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--port', '0', '--served-model-name', 'from-flag'], {
      cwd: root,
      env: { ...process.env, PARALON_DATA_DIR: dataDir, PARALON_SERVED_MODEL_NAME: 'from-env', PARALON_DEVICE: 'cpu', PARALON_KV_CACHE_MEMORY: '32MiB' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 60_000;
    let match: RegExpMatchArray | null = null;
    // The banner arrives in several writes: wait for its last line too.
    while (!((match = stderr.match(/API at (http:\/\/127\.0\.0\.1:\d+\/v1)/)) && /API keys: /.test(stderr)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    expect(match, stderr).not.toBeNull();
    expect(stderr).toMatch(/'from-flag' is the demo model: random weights, so its output is random noise/);
    expect(stderr).toMatch(/API keys: required/);

    const baseURL = match![1];
    const client = new OpenAI({ baseURL, apiKey: key, maxRetries: 0 });
    await expect(new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 }).models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const r = await client.chat.completions.create({ model: 'from-flag', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 });
    expect(r.usage?.completion_tokens).toBeGreaterThan(0);

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(stderr).toMatch(/Stopped\./);
    expect(stderr).not.toContain(key);
  });
});
