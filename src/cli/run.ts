// `paralon run [--model X] "prompt"`: one answer to stdout for scripts (the prompt from stdin when it
// is piped), the model loaded through the library API, not the HTTP server. --json prints the answer,
// the reasoning, the finish reason and the usage as one JSON object.
import { parseArgs } from 'node:util';
import type { SamplingOptions } from '../engine/types.js';
import { intSetting, numberSetting } from '../server/config.js';
import { UsageError } from './errors.js';
import { loadLocalModel, localModel } from './load.js';
import { MODEL_OPTIONS, MODEL_OPTIONS_HELP, resolveModelSettings } from './options.js';
import { chatTurn } from './turn.js';

export const RUN_HELP = `paralon run [options] [PROMPT …]   answer one prompt (read from stdin when none is given and stdin is piped)

  --system TEXT                a system message
  --max-tokens N               completion tokens at most (default: until the model stops)
  --temperature T              sampling temperature (default: the model's generation_config.json)
  --seed N                     the same seed answers the same prompt the same way
  --no-think                   Qwen3: answer without thinking (enable_thinking=false)
  --show-thinking              print the thinking (to stderr), not only the answer
  --json                       print {"model", "content", "reasoning", "finish_reason", "usage"} instead
${MODEL_OPTIONS_HELP}`;

const RUN_OPTIONS = {
  ...MODEL_OPTIONS,
  system: { type: 'string' },
  'max-tokens': { type: 'string' },
  temperature: { type: 'string' },
  seed: { type: 'string' },
  'no-think': { type: 'boolean' },
  'show-thinking': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export async function run(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: RUN_OPTIONS, allowPositionals: true, strict: true });
  const settings = resolveModelSettings(values, env);
  const none: NodeJS.ProcessEnv = {}; // sampling flags have no PARALON_* variables
  const sampling: SamplingOptions = {
    maxTokens: intSetting(values, none, 'max-tokens', 1),
    temperature: numberSetting(values, none, 'temperature', 0, 100),
    seed: intSetting(values, none, 'seed', 0),
  };
  let prompt = positionals.join(' ');
  if (prompt === '' && !process.stdin.isTTY) prompt = (await readStdin()).trimEnd();
  if (prompt === '') throw new UsageError('run needs a prompt: paralon run "Why is the sky blue?" (or pipe it on stdin)');

  const local = await localModel({ spec: settings.model, dataDir: settings.dataDir, revision: settings.revision, hfToken: settings.hfToken }, process.stderr);
  const model = await loadLocalModel(
    local,
    { device: settings.device, threads: settings.threads, cpuPrecision: settings.cpuPrecision, maxModelLen: settings.maxModelLen, kvCacheMemory: settings.kvCacheMemory, maxNumSeqs: 1 },
    process.stderr,
    process.stderr.isTTY === true,
  );
  try {
    const messages = [...(values.system ? [{ role: 'system' as const, content: values.system }] : []), { role: 'user' as const, content: prompt }];
    const abort = new AbortController();
    const stop = () => abort.abort();
    process.once('SIGINT', stop);
    const json = values.json === true;
    const result = await chatTurn(model, messages, {
      sampling,
      enableThinking: values['no-think'] !== true,
      signal: abort.signal,
      onDelta: (d) => {
        if (json) return;
        if (d.reasoning && values['show-thinking']) process.stderr.write(d.reasoning);
        if (d.content) process.stdout.write(d.content);
      },
    }).finally(() => process.off('SIGINT', stop));
    if (json)
      process.stdout.write(
        JSON.stringify({
          model: model.id,
          content: result.content,
          reasoning: result.reasoning,
          finish_reason: result.finishReason,
          usage: { prompt_tokens: result.usage.promptTokens, completion_tokens: result.usage.completionTokens, total_tokens: result.usage.totalTokens },
        }) + '\n',
      );
    else if (!result.content.endsWith('\n')) process.stdout.write('\n');
    return result.finishReason === 'cancelled' ? 130 : 0;
  } finally {
    model.dispose();
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
