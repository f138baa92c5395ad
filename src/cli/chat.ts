// `paralon chat`: an interactive terminal chat in the spirit of `ollama run`, on the library API.
// Answers stream as they are generated; Qwen3's thinking is shown dimmed above the answer (/think,
// /nothink switch it); a status line follows each answer. Ctrl-C stops the answer being generated; a
// second Ctrl-C (or Ctrl-D, or /bye) leaves. Multi-line input: a line ending in \ continues, and
// """ opens and closes a block.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { parseArgs } from 'node:util';
import type { Model } from '../engine/model.js';
import type { ChatMessage, SamplingOptions } from '../engine/types.js';
import { intSetting, numberSetting } from '../server/config.js';
import { loadLocalModel, localModel } from './load.js';
import { MODEL_OPTIONS, MODEL_OPTIONS_HELP, resolveModelSettings } from './options.js';
import { chatTurn, type TurnResult } from './turn.js';

export const CHAT_HELP = `paralon chat [options]             chat with a model in the terminal

  --system TEXT                the system message to start with
  --max-tokens N               completion tokens per answer at most (default: until the model stops)
  --temperature T              sampling temperature (default: the model's generation_config.json)
  --seed N                     a seed for the first answer (later ones follow from it)
  --no-think                   Qwen3: start with thinking off (/think turns it on)
${MODEL_OPTIONS_HELP}`;

const COMMANDS_HELP = `  /think            Qwen3 thinks before answering (shown dimmed)
  /nothink          answer without thinking
  /system TEXT      set the system message (empty: none); the conversation goes on
  /reset            forget the conversation (the system message stays)
  /save FILE        write the conversation as JSON
  /bye              leave (also Ctrl-D, or Ctrl-C twice)
  """               start or end a multi-line message; a line ending in \\ continues on the next
  Ctrl-C            stop the answer being generated
`;

const CHAT_OPTIONS = {
  ...MODEL_OPTIONS,
  system: { type: 'string' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  seed: { type: 'string' },
  'no-think': { type: 'boolean' },
} as const;

const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

export async function chat(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values } = parseArgs({ args, options: CHAT_OPTIONS, strict: true });
  const settings = resolveModelSettings(values, env);
  const none: NodeJS.ProcessEnv = {};
  const sampling: SamplingOptions = {
    maxTokens: intSetting(values, none, 'max-tokens', 1),
    temperature: numberSetting(values, none, 'temperature', 0, 100),
    seed: intSetting(values, none, 'seed', 0),
  };
  const out = process.stdout;
  const local = await localModel({ spec: settings.model, dataDir: settings.dataDir, revision: settings.revision, hfToken: settings.hfToken }, process.stderr);
  const model = await loadLocalModel(
    local,
    { device: settings.device, threads: settings.threads, cpuPrecision: settings.cpuPrecision, maxModelLen: settings.maxModelLen, kvCacheMemory: settings.kvCacheMemory, maxNumSeqs: 1 },
    process.stderr,
    true,
  );
  try {
    out.write(`Chatting with ${model.id} on ${model.device.name}${local.demo ? ' (the demo model: random weights, its answers are noise)' : ''}.\n`);
    out.write(`${DIM}/? for commands, Ctrl-C stops an answer, Ctrl-D leaves.${RESET}\n`);
    return await new ChatSession(model, sampling, values.system ?? '', values['no-think'] !== true, out).run();
  } finally {
    model.dispose();
  }
}

class ChatSession {
  #messages: ChatMessage[] = [];
  #generating: AbortController | null = null;
  /** Ctrl-C presses since the last line was entered: the second one leaves. */
  #interrupts = 0;
  #block: string[] | null = null; // lines of a """ block
  #continued: string[] = []; // lines ended by \
  #rl!: Interface;
  #closed = false;
  #done!: (code: number) => void;

  constructor(
    readonly model: Model,
    readonly sampling: SamplingOptions,
    public system: string,
    public thinking: boolean,
    readonly out: NodeJS.WriteStream,
  ) {}

  run(): Promise<number> {
    return new Promise((resolve) => {
      this.#done = (code) => {
        this.#rl.close();
        resolve(code);
      };
      this.#rl = createInterface({ input: process.stdin, output: this.out, prompt: '>>> ', terminal: process.stdin.isTTY === true });
      this.#rl.on('SIGINT', () => this.#interrupt());
      process.on('SIGINT', () => this.#interrupt()); // stdin not a terminal
      // Lines are handled one at a time: a message typed during an answer waits for it.
      let queue = Promise.resolve();
      this.#rl.on('line', (line) => {
        queue = queue.then(() => this.#line(line));
      });
      // Ctrl-D on a terminal leaves at once; the end of piped input lets the queued messages finish.
      this.#rl.on('close', () => {
        this.#closed = true;
        if (process.stdin.isTTY) this.#generating?.abort();
        void queue.then(() => {
          this.out.write('\n');
          resolve(0);
        });
      });
      this.#rl.prompt();
    });
  }

  #interrupt(): void {
    this.#interrupts++;
    if (this.#generating !== null) {
      this.#generating.abort();
      return;
    }
    if (this.#interrupts >= 2) return this.#done(0);
    this.#block = null;
    this.#continued = [];
    this.out.write(`\n${DIM}(Ctrl-C again or Ctrl-D to leave)${RESET}\n`);
    this.#prompt();
  }

  async #line(line: string): Promise<void> {
    this.#interrupts = 0;
    if (this.#block !== null) {
      if (line.trimEnd().endsWith('"""')) {
        const text = [...this.#block, line.trimEnd().slice(0, -3)].join('\n');
        this.#block = null;
        return this.#submit(text);
      }
      this.#block.push(line);
      return this.#prompt('... ');
    }
    if (line.startsWith('"""')) {
      const rest = line.slice(3);
      if (rest.trimEnd().endsWith('"""') && rest.trim().length >= 3) return this.#submit(rest.trimEnd().slice(0, -3));
      this.#block = rest === '' ? [] : [rest];
      return this.#prompt('... ');
    }
    if (line.endsWith('\\')) {
      this.#continued.push(line.slice(0, -1));
      return this.#prompt('... ');
    }
    const continued = this.#continued.length > 0;
    const text = [...this.#continued, line].join('\n');
    this.#continued = [];
    if (!continued && text.startsWith('/')) return this.#command(text);
    return this.#submit(text);
  }

  #prompt(prompt = '>>> '): void {
    if (this.#closed) return;
    this.#rl.setPrompt(prompt);
    this.#rl.prompt();
  }

  #command(text: string): void {
    const [name, ...rest] = text.split(' ');
    const arg = rest.join(' ').trim();
    const note = (s: string) => this.out.write(`${DIM}${s}${RESET}\n`);
    switch (name) {
      case '/think':
        this.thinking = true;
        note('Thinking on.');
        break;
      case '/nothink':
        this.thinking = false;
        note('Thinking off.');
        break;
      case '/system':
        this.system = arg;
        note(arg ? 'System message set.' : 'System message cleared.');
        break;
      case '/reset':
        this.#messages = [];
        note('Conversation cleared.');
        break;
      case '/save': {
        if (!arg) {
          note('Usage: /save FILE');
          break;
        }
        const file = path.resolve(arg);
        try {
          writeFileSync(file, JSON.stringify({ model: this.model.id, messages: this.#conversation() }, null, 2) + '\n');
          note(`Saved ${this.#messages.length} messages to ${file}.`);
        } catch (e) {
          note(`Cannot save to ${file}: ${(e as Error).message}`);
        }
        break;
      }
      case '/bye':
        return this.#done(0);
      case '/?':
      case '/help':
        this.out.write(COMMANDS_HELP);
        break;
      default:
        note(`Unknown command ${name}; /? lists them.`);
    }
    this.#prompt();
  }

  #conversation(): ChatMessage[] {
    return [...(this.system ? [{ role: 'system' as const, content: this.system }] : []), ...this.#messages];
  }

  async #submit(text: string): Promise<void> {
    if (text.trim() === '') return this.#prompt();
    this.#messages.push({ role: 'user', content: text });
    const abort = new AbortController();
    this.#generating = abort;
    let inReasoning = false;
    let wrote = false;
    let result: TurnResult;
    try {
      result = await chatTurn(this.model, this.#conversation(), {
        sampling: this.sampling,
        enableThinking: this.thinking,
        signal: abort.signal,
        onDelta: (d) => {
          if (d.reasoning) {
            if (!inReasoning) this.out.write(DIM);
            inReasoning = true;
            this.out.write(d.reasoning);
          }
          if (d.content) {
            if (inReasoning) this.out.write(`${RESET}\n\n`);
            inReasoning = false;
            this.out.write(d.content);
          }
          wrote = true;
        },
      });
    } catch (e) {
      // E.g. the conversation outgrew the context: say so and keep the session.
      this.#messages.pop();
      this.out.write(`${RESET}\n${DIM}[${(e as Error).message}; /reset starts over]${RESET}\n`);
      return this.#prompt();
    } finally {
      this.#generating = null;
    }
    if (inReasoning) this.out.write(RESET);
    // The answer joins the conversation (what was shown, even when stopped); the reasoning does not,
    // as Qwen3's template drops it from earlier turns.
    this.#messages.push({ role: 'assistant', content: result.content });
    const stopped = result.finishReason === 'cancelled' ? 'stopped · ' : result.finishReason === 'length' ? 'length limit · ' : '';
    const status = `${stopped}${result.usage.completionTokens} tokens · ${result.tokensPerSecond.toFixed(1)} tok/s · first token ${result.firstTokenSeconds.toFixed(2)} s · context ${result.usage.totalTokens}/${this.model.contextLength}`;
    this.out.write(`${wrote ? '\n' : ''}${DIM}[${status}]${RESET}\n`);
    this.#prompt();
  }
}
