// Shared by the server tests: the demo model (written once per file into a temp dir, loaded on the
// CPU with small limits so the tests run fast), a real server on an ephemeral port, and the official
// OpenAI client pointed at it.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import type { FastifyInstance } from 'fastify';
import { loadModel, writeDemoModel, type Model } from '../../src/index.js';
import { createServer, type ServerOptions } from '../../src/server/app.js';
import { DEMO_MODEL_ID } from '../../src/server/serve.js';

export { DEMO_MODEL_ID };

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `paralon-${prefix}-`));
}

export async function loadDemoModel(
  options: { maxNumSeqs?: number; maxWaiting?: number; grammarCompileTimeoutMs?: number } = {},
): Promise<{ model: Model; dir: string }> {
  const dir = tempDir('demo');
  writeDemoModel(dir);
  const model = await loadModel(dir, {
    device: 'cpu',
    maxModelLen: 1024,
    kvCacheMemory: 64 * 1024 * 1024,
    maxNumSeqs: options.maxNumSeqs ?? 32,
    maxNumBatchedTokens: 512,
    maxWaiting: options.maxWaiting,
    grammarCompileTimeoutMs: options.grammarCompileTimeoutMs,
    // One grammar worker: each holds Qwen3's tokenizer info (~180 MB).
    grammarWorkers: 1,
  });
  return { model, dir };
}

export interface TestServer {
  app: FastifyInstance;
  baseURL: string;
  dataDir: string;
  url(route: string): string;
  client(apiKey?: string): OpenAI;
  close(): Promise<void>;
}

export async function startServer(options: Partial<ServerOptions> & Pick<ServerOptions, 'model'>): Promise<TestServer> {
  const dataDir = options.dataDir ?? tempDir('data');
  const app = await createServer({ modelId: DEMO_MODEL_ID, dataDir, ...options });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const origin = `http://127.0.0.1:${address.port}`;
  return {
    app,
    baseURL: `${origin}/v1`,
    dataDir,
    url: (route) => origin + route,
    // No retries: a 429 or 5xx must surface as the SDK's error, not be retried away.
    client: (apiKey = 'no-key') => new OpenAI({ baseURL: `${origin}/v1`, apiKey, maxRetries: 0, timeout: 60_000 }),
    async close() {
      await app.close();
      if (options.dataDir === undefined) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** POSTs a raw body (any text, any content type) and returns the status and parsed JSON. */
export async function postRaw(url: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const text = await res.text();
  let json: unknown = null;
  try {
    json = JSON.parse(text);
  } catch {
    // left null: the caller asserts on it
  }
  return { status: res.status, json: json as { error?: { message: unknown; type: unknown; param: unknown; code: unknown } } | null, text };
}

/** Polls until `check` returns a value (not undefined) or the timeout passes. */
export async function waitFor<T>(check: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('waitFor: timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createNetServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
