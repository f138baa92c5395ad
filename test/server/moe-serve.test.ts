// `paralon serve --model <dir>` on a tiny random Qwen3-MoE, as a user runs it (a child process), with
// a YaRN `--rope-scaling` override that doubles the context, chatting through the official client.
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { tempDir } from './fixture.js';
import { writeTinyModel } from '../engine/fixture.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = tempDir('moe-serve');
// Qwen3's full vocabulary, so the chat template's special tokens exist (tied: one 22 MB table).
const modelDir = writeTinyModel({
  vocabSize: 151_936,
  tieWordEmbeddings: true,
  maxPositionEmbeddings: 4096,
  moe: { numExperts: 5, numExpertsPerTok: 2, moeIntermediateSize: 40, normTopkProb: true },
});
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(modelDir, { recursive: true, force: true });
});

describe('paralon serve with a Qwen3-MoE checkpoint', () => {
  it('serves it with YaRN from --rope-scaling (context 4,096 → 8,192) and chats through the OpenAI client', async () => {
    const yarn = JSON.stringify({ rope_type: 'yarn', factor: 2, original_max_position_embeddings: 4096 });
    const args = ['--import', 'tsx', 'src/cli.ts', 'serve', '--model', modelDir, '--port', '0', '--rope-scaling', yarn, '--max-model-len', '9000'];
    const child = spawn(process.execPath, args, {
      cwd: root,
      env: { ...process.env, PARALON_DATA_DIR: dataDir, PARALON_DEVICE: 'cpu', PARALON_KV_CACHE_MEMORY: '4MiB', PARALON_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const deadline = Date.now() + 60_000;
    let match: RegExpMatchArray | null = null;
    while (!((match = stderr.match(/API at (http:\/\/127\.0\.0\.1:\d+\/v1)/)) && /Ctrl-C/.test(stderr)) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 100));
    try {
      expect(match, stderr).not.toBeNull();
      // max_position_embeddings 4,096 × YaRN factor 2, below --max-model-len and the KV cache.
      expect(stderr).toMatch(/context 8192 tokens/);
      const client = new OpenAI({ baseURL: match![1], apiKey: 'no-key', maxRetries: 0 });
      const modelId = path.basename(modelDir).toLowerCase();
      const r = await client.chat.completions.create({ model: modelId, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 6, ignore_eos: true } as never);
      const completion = r as OpenAI.ChatCompletion;
      expect(completion.usage?.completion_tokens).toBe(6);
      expect(typeof completion.choices[0].message.content).toBe('string');
      const stream = await client.chat.completions.create({ model: modelId, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 4, stream: true });
      let chunks = 0;
      for await (const chunk of stream) if (chunk.choices[0]?.delta?.content !== undefined) chunks++;
      expect(chunks).toBeGreaterThan(0);
    } finally {
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  });
});
