#!/usr/bin/env node
// `paralon serve | run | chat | pull | ls | rm | quantize | keys | usage | demo-model`: a thin layer over
// the library, hub/, model/ and server/. Every subcommand takes --data-dir (PARALON_DATA_DIR, default
// ~/.paralon), and serve, keys and usage --database (a postgres:// URL, PARALON_DATABASE_URL) for a
// fleet's shared store; flags beat PARALON_* variables, which beat defaults. Failures print one line
// (the stack only at --log-level debug); exit code 2 means bad usage, 1 a runtime failure.
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { chat, CHAT_HELP } from './cli/chat.js';
import { reportFailure, UsageError } from './cli/errors.js';
import { ls, MODELS_HELP, pull, rm } from './cli/models.js';
import { MODEL_OPTIONS, MODEL_OPTIONS_HELP, wantsDebug } from './cli/options.js';
import { run, RUN_HELP } from './cli/run.js';
import { printTable } from './cli/table.js';
import { writeDemoModel } from './index.js';
import { exportQwen3Gguf, GGUF_FILE_TYPES, type GgufFileType } from './model/gguf/index.js';
import { ConfigError, resolveDatabaseUrl, resolveDataDir, type RawValues } from './server/config.js';
import { resolveServeConfig, serve } from './server/serve.js';
import { withStore, type StoreLocation } from './server/store/open.js';
import { StoreError, type RateLimits } from './server/store/types.js';

const HELP = `Paralon: LLM inference for Node.js with an OpenAI-compatible server.

Usage:
  paralon serve [options]              serve a model (default: the random-weight demo model)
  paralon chat [--model ID] [options]        chat in the terminal (paralon chat --help)
  paralon run [--model ID] "PROMPT"          answer once to stdout (paralon run --help)
${MODELS_HELP}  paralon keys create --name NAME [LIMITS]   create an API key (printed once)
  paralon keys limits ID|NAME LIMITS         change a key's rate limits
  paralon keys list                          list keys and their limits (never the keys themselves)
  paralon keys revoke ID|NAME                revoke a key
  paralon usage [--since YYYY-MM-DD]         metered tokens per day, key and model
  paralon demo-model [DIR]                   write the demo model (default: <data-dir>/demo-model)
  paralon quantize DIR OUT.gguf --type TYPE
                                             an HF Qwen3 or Qwen3-MoE directory as a GGUF: Q4_K_M, Q5_K_M, Q6_K,
                                             Q8_0 (llama-quantize's recipes, no imatrix), or F32, F16, BF16

LIMITS (per key, across every replica; N or 'none' for unlimited):
  --rpm N               requests per minute
  --tpm N               tokens per minute (prompt + max_tokens reserved at admission)
  --max-concurrent N    generation requests running at once

Common options:
  --data-dir DIR        keys, usage and the demo model (PARALON_DATA_DIR; default ~/.paralon)
  --database URL        postgres://user:pass@host/db: keys, limits and usage shared by replicas
                        (PARALON_DATABASE_URL; default: SQLite under --data-dir)

Hub models go to the Hugging Face cache (HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub),
shared with vLLM and transformers; HF_TOKEN, HF_ENDPOINT and HF_HUB_OFFLINE=1 are honoured.

serve options (each also as PARALON_<NAME>, e.g. PARALON_PORT):
${MODEL_OPTIONS_HELP}  --served-model-name NAME     model id for clients (default: the hub id, or the directory's name lower-cased)
  --task TASK                  generate | embed (default: embed for a sentence-transformers checkpoint, else generate)
  --host HOST                  default 127.0.0.1 (without API keys the server binds loopback only)
  --port N                     default 8000
  --rope-scaling JSON          replaces config.json's rope_scaling, e.g. Qwen3's 131,072-token context:
                               '{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":32768}'
  --kv-cache-dtype TYPE        auto | f32 | bf16 | f16 | fp8 (default auto: the checkpoint's float dtype, bf16 for
                               quantized; fp8 is e4m3 with the checkpoint's k_scale/v_scale, else 1, as vLLM's)
  --max-num-seqs N             sequences per batch
  --max-num-batched-tokens N   tokens per engine step
  --max-waiting N              requests queued for the engine before new ones get 429 (default 256)
  --grammar-compile-timeout S  a tools / response_format grammar compiling longer gets a 400 (default 10)
  --grammar-workers N          grammar worker threads, each ~180 MB with Qwen3's vocabulary (default 2)
  --body-limit SIZE            largest request body (default 4MiB)
  --shutdown-grace SECONDS     how long Ctrl-C waits for requests to finish (default 10)
  --replica-id ID              this process's id in usage rows (default host:pid:random); a restart
                               under the same id marks its earlier running rows interrupted at once
  --replica-timeout SECONDS    a replica silent this long is dead: its running rows become
                               interrupted (default 30)
`;

const dataDirOption = { 'data-dir': { type: 'string' } } as const;
const storeOptions = { ...dataDirOption, database: { type: 'string' } } as const;
const limitOptions = { rpm: { type: 'string' }, tpm: { type: 'string' }, 'max-concurrent': { type: 'string' } } as const;

const SERVE_OPTIONS = {
  ...MODEL_OPTIONS,
  database: { type: 'string' },
  'replica-id': { type: 'string' },
  'replica-timeout': { type: 'string' },
  'served-model-name': { type: 'string' },
  task: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'rope-scaling': { type: 'string' },
  'kv-cache-dtype': { type: 'string' },
  'max-num-seqs': { type: 'string' },
  'max-num-batched-tokens': { type: 'string' },
  'max-waiting': { type: 'string' },
  'grammar-compile-timeout': { type: 'string' },
  'grammar-workers': { type: 'string' },
  'body-limit': { type: 'string' },
  'shutdown-grace': { type: 'string' },
} as const;

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, allowPositionals = false) {
  return parseArgs({ args, options, allowPositionals, strict: true });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(command === 'run' ? RUN_HELP : command === 'chat' ? CHAT_HELP : HELP);
    return 0;
  }
  switch (command) {
    case 'run':
      return run(rest);
    case 'chat':
      return chat(rest);
    case 'pull':
      return pull(rest);
    case 'ls':
      return ls(rest);
    case 'rm':
      return rm(rest);
    case 'serve': {
      const { values } = parse(rest, SERVE_OPTIONS);
      await serve(resolveServeConfig(values));
      return -1; // keeps running until a signal
    }
    case 'keys':
      return await keys(rest);
    case 'usage':
      return await usage(rest);
    case 'quantize':
      return quantizeCommand(rest);
    case 'demo-model': {
      const { values, positionals } = parse(rest, dataDirOption, true);
      const dir = path.resolve(positionals[0] ?? path.join(resolveDataDir(values), 'demo-model'));
      writeDemoModel(dir);
      console.log(`Wrote the demo model to ${dir}. Its weights are random: its output is noise.`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command '${command}'; \`paralon help\` lists the commands`);
  }
}

function quantizeCommand(args: string[]): number {
  const { values, positionals } = parse(args, { type: { type: 'string' } }, true);
  const type = (values.type ?? '').toUpperCase();
  if (positionals.length !== 2 || !(type in GGUF_FILE_TYPES))
    throw new ConfigError(`usage: paralon quantize DIR OUT.gguf --type ${Object.keys(GGUF_FILE_TYPES).join('|')}`);
  const [dir, out] = positionals.map((p) => path.resolve(p));
  const started = Date.now();
  const result = exportQwen3Gguf(dir, out, {
    fileType: type as GgufFileType,
    onProgress: (done, total, name) => {
      const s = (Date.now() - started) / 1000;
      const eta = done < total ? `, ~${Math.round((s / done) * (total - done))} s left` : '';
      process.stderr.write(`\r[${done}/${total}] ${name} (${s.toFixed(0)} s${eta})`.padEnd(78));
    },
  });
  process.stderr.write('\n');
  for (const f of result.fallbacks) process.stderr.write(`warning: ${f}\n`);
  const mix = Object.entries(result.types).map(([t, n]) => `${n} ${t}`).join(', ');
  console.log(`Wrote ${out}: ${type}, ${result.tensors} tensors (${mix}), ${(result.bytes / 2 ** 20).toFixed(1)} MiB in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return 0;
}

function storeLocation(values: RawValues): StoreLocation {
  return { dataDir: resolveDataDir(values), databaseUrl: resolveDatabaseUrl(values) };
}

/** --rpm / --tpm / --max-concurrent: a positive integer, or 'none' (unlimited); absent ones stay undefined. */
function parseLimits(values: RawValues): Partial<RateLimits> {
  const limits: Partial<RateLimits> = {};
  const fields = [['rpm', 'rpm'], ['tpm', 'tpm'], ['max-concurrent', 'maxConcurrent']] as const;
  for (const [flag, field] of fields) {
    const raw = values[flag];
    if (typeof raw !== 'string') continue;
    if (raw === 'none') limits[field] = null;
    else if (/^[1-9]\d*$/.test(raw) && Number.isSafeInteger(Number(raw))) limits[field] = Number(raw);
    else throw new ConfigError(`--${flag} must be a positive integer or 'none', got '${raw}'`);
  }
  return limits;
}

function describeLimits(l: RateLimits): string {
  const parts = [l.rpm !== null && `rpm ${l.rpm}`, l.tpm !== null && `tpm ${l.tpm}`, l.maxConcurrent !== null && `concurrent ${l.maxConcurrent}`];
  return parts.filter(Boolean).join(', ') || 'unlimited';
}

async function keys(args: string[]): Promise<number> {
  const [action, ...rest] = args;
  const { values, positionals } = parse(rest, { ...storeOptions, ...limitOptions, name: { type: 'string' } }, true);
  const limits = parseLimits(values);
  return withStore(storeLocation(values), async ({ keys: store }) => {
    switch (action) {
      case 'create': {
        if (!values.name) throw new ConfigError('keys create needs --name NAME');
        const { key, info } = await store.create(values.name, limits);
        console.log(key);
        console.error(`Created ${info.id} ('${info.name}', ${describeLimits(info.limits)}). This is the only time the key is shown; store it now.`);
        return 0;
      }
      case 'limits': {
        if (positionals.length !== 1) throw new ConfigError('keys limits needs one key id or name');
        if (Object.keys(limits).length === 0) throw new ConfigError('keys limits needs --rpm, --tpm or --max-concurrent (N or none)');
        const n = await store.setLimits(positionals[0], limits);
        if (n === 0) {
          console.error(`no active key has the id or name '${positionals[0]}'`);
          return 1;
        }
        console.log(`Changed the limits of ${n} key${n === 1 ? '' : 's'}.`);
        return 0;
      }
      case 'list': {
        const rows = (await store.list()).map((k) => [
          k.id,
          k.name,
          k.hint,
          describeLimits(k.limits),
          k.createdAt.toISOString(),
          k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active',
        ]);
        if (rows.length === 0) console.log('No API keys: the server runs open (loopback only).');
        else printTable(['ID', 'NAME', 'KEY', 'LIMITS', 'CREATED', 'STATUS'], rows);
        return 0;
      }
      case 'revoke': {
        if (positionals.length !== 1) throw new ConfigError('keys revoke needs one key id or name');
        const n = await store.revoke(positionals[0]);
        if (n === 0) {
          console.error(`no active key has the id or name '${positionals[0]}'`);
          return 1;
        }
        console.log(`Revoked ${n} key${n === 1 ? '' : 's'}.`);
        return 0;
      }
      default:
        throw new ConfigError('keys needs an action: create --name NAME | limits ID|NAME | list | revoke ID|NAME');
    }
  });
}

async function usage(args: string[]): Promise<number> {
  const { values } = parse(args, { ...storeOptions, since: { type: 'string' } });
  const since = values.since ? Date.parse(`${values.since}T00:00:00Z`) : 0;
  if (Number.isNaN(since)) throw new ConfigError(`--since must be a date (YYYY-MM-DD), got '${values.since}'`);
  return withStore(storeLocation(values), async (store) => {
    const names = new Map((await store.keys.list()).map((k) => [k.id, k.name]));
    const days = await store.usage.daily(since);
    if (days.length === 0) {
      console.log('No usage recorded.');
      return 0;
    }
    const total = { requests: 0, prompt: 0, completion: 0 };
    const rows = days.map((d) => {
      total.requests += d.requests;
      total.prompt += d.promptTokens;
      total.completion += d.completionTokens;
      const key = d.keyId === null ? '(no key)' : `${names.get(d.keyId) ?? '?'} (${d.keyId})`;
      return [d.date, key, d.model, String(d.requests), String(d.promptTokens), String(d.completionTokens), String(d.promptTokens + d.completionTokens)];
    });
    rows.push(['total', '', '', String(total.requests), String(total.prompt), String(total.completion), String(total.prompt + total.completion)]);
    printTable(['DAY (UTC)', 'KEY', 'MODEL', 'REQUESTS', 'PROMPT', 'COMPLETION', 'TOTAL'], rows);
    return 0;
  });
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = reportFailure(error, wantsDebug(process.argv.slice(2)));
  },
);
