// `paralon chat` and `paralon run` as a person uses them: in a pseudo-terminal (tmux) on the demo model
// — streaming, /reset, /save, multi-line input, Ctrl-C stopping an answer, leaving with Ctrl-C twice
// or Ctrl-D — and as scripts use `run` (stdin, --json, exit codes).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { writeDemoModel } from '../../src/index.js';
import { HAS_TMUX, REQUIRE_TMUX, TmuxSession } from './tmux.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'paralon-terminal-'));
// A long context so an answer runs long enough to be stopped; a small KV cache.
const MODEL_FLAGS = `--data-dir ${dataDir} --device cpu --threads 1 --max-model-len 4096 --kv-cache-memory 48MiB`;
const CLI = 'node --import tsx src/cli.ts';

if (!HAS_TMUX && !REQUIRE_TMUX) console.warn('terminal: tmux is absent, so the pseudo-terminal tests are skipped (install it: apt-get install tmux)');

beforeAll(() => writeDemoModel(path.join(dataDir, 'demo-model')));
afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

let term: TmuxSession;
afterEach(() => term?.stop());

describe.skipIf(!HAS_TMUX && !REQUIRE_TMUX)('in a terminal', () => {
  it('chat streams answers with a status line, keeps /reset, /save and multi-line input, stops on Ctrl-C and leaves on the second', async () => {
    term = new TmuxSession();
    term.start(`${CLI} chat ${MODEL_FLAGS} --seed 5`, root);
    await term.waitFor(/Chatting with paralon-demo on cpu/);
    await term.waitFor(/>>> $/m);

    term.send('Tell me a long story.', 'Enter');
    // Streaming: text appears while the answer is still being generated (no status line yet).
    const before = await term.waitFor(/>>> Tell me a long story\.\n(.{20,})/);
    expect(term.screen()).not.toMatch(/tokens · .* tok\/s/);
    expect(before[1].length).toBeGreaterThan(0);
    term.send('C-c');
    await term.waitFor(/\[stopped · \d+ tokens · [\d.]+ tok\/s · first token [\d.]+ s · context \d+\/4096\]/);

    term.send('/reset', 'Enter');
    await term.waitFor(/Conversation cleared\./);
    term.send('/nothink', 'Enter');
    await term.waitFor(/Thinking off\./);
    term.send('"""', 'Enter', 'first line', 'Enter', 'second line"""', 'Enter');
    await term.waitFor(/second line"""\n.{10,}/);
    term.send('C-c');
    await term.waitFor(/second line"""\n[\s\S]*?\[stopped · \d+ tokens/);
    const saved = path.join(dataDir, 'conversation.json');
    term.send('/save ' + saved, 'Enter');
    await term.waitFor(/Saved 2 messages to/);
    const conversation = JSON.parse(readFileSync(saved, 'utf8'));
    expect(conversation.messages[0]).toEqual({ role: 'user', content: 'first line\nsecond line' }); // /reset forgot the story
    expect(conversation.messages[1].role).toBe('assistant');

    term.send('C-c');
    await term.waitFor(/Ctrl-C again or Ctrl-D to leave/);
    term.send('C-c');
    expect(await term.exitCode()).toBe(0);
  });

  it('chat leaves on Ctrl-D', async () => {
    term = new TmuxSession();
    term.start(`${CLI} chat ${MODEL_FLAGS}`, root);
    await term.waitFor(/>>> $/m);
    term.send('C-d');
    expect(await term.exitCode()).toBe(0);
  });

  it('run streams to the terminal and exits 130 when Ctrl-C stops it', async () => {
    term = new TmuxSession();
    term.start(`${CLI} run ${MODEL_FLAGS} --seed 2 'Write a very long poem.'`, root);
    await term.waitFor(/weights.*\n.{20,}/); // the weights bar, then streamed text
    term.send('C-c');
    expect(await term.exitCode()).toBe(130);
  });
});

describe('paralon run and chat in scripts', () => {
  const paralon = (args: string[], input?: string) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: root, input, encoding: 'utf8', env: { ...process.env, PARALON_DATA_DIR: dataDir } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const flags = ['--device', 'cpu', '--threads', '1', '--kv-cache-memory', '16MiB', '--max-model-len', '256'];

  it('reads the prompt from stdin and prints the answer and its usage as JSON', () => {
    const r = paralon(['run', ...flags, '--json', '--max-tokens', '6', '--seed', '1', '--no-think'], 'What is 2+2?\n');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ model: 'paralon-demo', finish_reason: 'length', usage: { completion_tokens: 6 } });
    expect(out.usage.prompt_tokens).toBeGreaterThan(5);
    expect(out.usage.total_tokens).toBe(out.usage.prompt_tokens + 6);
    expect(typeof out.content).toBe('string');
    expect(r.stderr).toBe(''); // no progress lines when stderr is not a terminal
    // The same seed answers the same way, as plain text on stdout.
    const again = paralon(['run', ...flags, '--max-tokens', '6', '--seed', '1', '--no-think', 'What is 2+2?']);
    expect(again.stdout).toBe(out.content + '\n');
  });

  it('chat reads piped messages and commands to the end of the input', () => {
    const saved = path.join(dataDir, 'piped.json');
    const r = paralon(['chat', ...flags, '--max-tokens', '3', '--seed', '4', '--system', 'Be brief.'], `Hello\n/nothink\nAgain\n/save ${saved}\n`);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.match(/\[length limit · 3 tokens · /g)).toHaveLength(2);
    const { messages } = JSON.parse(readFileSync(saved, 'utf8'));
    expect(messages.map((m: { role: string }) => m.role)).toEqual(['system', 'user', 'assistant', 'user', 'assistant']);
    expect(messages[0].content).toBe('Be brief.');
  });

  it('exits 2 for bad usage and 1 for a runtime failure, with one line and no stack', () => {
    const missing = paralon(['run', ...flags, '--model', '/tmp/paralon-missing-model', 'hi']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe(
      'paralon: no such directory or file: /tmp/paralon-missing-model; expected a checkpoint directory (with config.json), a .gguf file, or a Hugging Face id such as Qwen/Qwen3-0.6B or Qwen/Qwen3-8B-GGUF:Q4_K_M\n',
    );
    expect(paralon(['run', ...flags, '--model', 'qwen3', 'hi']).code).toBe(2);
    expect(paralon(['run', ...flags]).stderr).toMatch(/run needs a prompt/);
    expect(paralon(['run', '--bogus']).code).toBe(2);
    const notCheckpoint = paralon(['run', ...flags, '--model', os.tmpdir(), 'hi']);
    expect(notCheckpoint.code).toBe(2);
    expect(notCheckpoint.stderr).toMatch(/is not a checkpoint directory \(it has no config\.json\)/);
    const noGpu = paralon(['run', '--device', 'cuda:7', 'hi']);
    expect(noGpu.code).toBe(1);
    expect(noGpu.stderr).toMatch(/^paralon: Device: cuda:7: .*; run on the CPU with --device cpu/);
    expect(noGpu.stderr.trim().split('\n')).toHaveLength(1);
    const debug = paralon(['run', '--device', 'cuda:7', '--log-level', 'debug', 'hi']);
    expect(debug.stderr).toMatch(/\n\s+at /); // the stack, on request
  });
});
