#!/usr/bin/env node
// `paralon serve | keys | usage | demo-model`: a thin layer over src/server/. Every subcommand takes
// --data-dir (PARALON_DATA_DIR, default ~/.paralon); flags beat PARALON_* variables, which beat defaults.
import path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { writeDemoModel } from './index.js';
import { ConfigError, resolveDataDir } from './server/config.js';
import { openDatabase } from './server/database.js';
import { KeyStore } from './server/key-store.js';
import { resolveServeConfig, serve, withKeyStore } from './server/serve.js';
import { UsageStore } from './server/usage-store.js';

const HELP = `Paralon: LLM inference for Node.js with an OpenAI-compatible server.

Usage:
  paralon serve [options]              serve a model (default: the random-weight demo model)
  paralon keys create --name NAME      create an API key (printed once)
  paralon keys list                    list keys (never the keys themselves)
  paralon keys revoke ID|NAME          revoke a key
  paralon usage [--since YYYY-MM-DD]   metered tokens per day, key and model
  paralon demo-model [DIR]             write the demo model (default: <data-dir>/demo-model)

Common option:
  --data-dir DIR        keys, usage and the demo model (PARALON_DATA_DIR; default ~/.paralon)

serve options (each also as PARALON_<NAME>, e.g. PARALON_PORT):
  --model DIR                  Hugging Face Qwen3 checkpoint directory (default: the demo model)
  --served-model-name NAME     model id for clients (default: the directory's name, lower-cased)
  --task TASK                  generate | embed (default: embed for a sentence-transformers checkpoint, else generate)
  --device NAME                auto | cpu | cuda | cuda:N | cuda-sim (default auto: first GPU, else CPU)
  --threads N                  CPU worker threads (default: one per core)
  --host HOST                  default 127.0.0.1 (without API keys the server binds loopback only)
  --port N                     default 8000
  --max-model-len N            prompt + completion tokens per request (default: the model's)
  --kv-cache-memory SIZE       KV cache size, e.g. 2GiB
  --max-num-seqs N             sequences per batch
  --max-num-batched-tokens N   tokens per engine step
  --max-waiting N              requests queued for the engine before new ones get 429 (default 256)
  --body-limit SIZE            largest request body (default 4MiB)
  --shutdown-grace SECONDS     how long Ctrl-C waits for requests to finish (default 10)
  --log-level LEVEL            fatal | error | warn | info | debug | trace (default: no logs)
`;

const dataDirOption = { 'data-dir': { type: 'string' } } as const;

const SERVE_OPTIONS = {
  ...dataDirOption,
  model: { type: 'string' },
  'served-model-name': { type: 'string' },
  task: { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  'max-model-len': { type: 'string' },
  'kv-cache-memory': { type: 'string' },
  'max-num-seqs': { type: 'string' },
  'max-num-batched-tokens': { type: 'string' },
  'max-waiting': { type: 'string' },
  'body-limit': { type: 'string' },
  'shutdown-grace': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

function parse<O extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: O, allowPositionals = false) {
  return parseArgs({ args, options, allowPositionals, strict: true });
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(HELP);
    return 0;
  }
  switch (command) {
    case 'serve': {
      const { values } = parse(rest, SERVE_OPTIONS);
      await serve(resolveServeConfig(values));
      return -1; // keeps running until a signal
    }
    case 'keys':
      return keys(rest);
    case 'usage':
      return usage(rest);
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
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`unknown command '${command}'\n\n${HELP}`);
      return 1;
  }
}

function keys(args: string[]): number {
  const [action, ...rest] = args;
  const { values, positionals } = parse(rest, { ...dataDirOption, name: { type: 'string' } }, true);
  const dataDir = resolveDataDir(values);
  return withKeyStore(dataDir, (store) => {
    switch (action) {
      case 'create': {
        if (!values.name) throw new ConfigError('keys create needs --name NAME');
        const { key, info } = store.create(values.name);
        console.log(key);
        console.error(`Created ${info.id} ('${info.name}'). This is the only time the key is shown; store it now.`);
        return 0;
      }
      case 'list': {
        const rows = store.list().map((k) => [
          k.id,
          k.name,
          k.hint,
          k.createdAt.toISOString(),
          k.revokedAt ? `revoked ${k.revokedAt.toISOString()}` : 'active',
        ]);
        if (rows.length === 0) console.log('No API keys: the server runs open (loopback only).');
        else printTable(['ID', 'NAME', 'KEY', 'CREATED', 'STATUS'], rows);
        return 0;
      }
      case 'revoke': {
        if (positionals.length !== 1) throw new ConfigError('keys revoke needs one key id or name');
        const n = store.revoke(positionals[0]);
        if (n === 0) {
          console.error(`no active key has the id or name '${positionals[0]}'`);
          return 1;
        }
        console.log(`Revoked ${n} key${n === 1 ? '' : 's'}.`);
        return 0;
      }
      default:
        throw new ConfigError('keys needs an action: create --name NAME | list | revoke ID|NAME');
    }
  });
}

function usage(args: string[]): number {
  const { values } = parse(args, { ...dataDirOption, since: { type: 'string' } });
  const since = values.since ? Date.parse(`${values.since}T00:00:00Z`) : 0;
  if (Number.isNaN(since)) throw new ConfigError(`--since must be a date (YYYY-MM-DD), got '${values.since}'`);
  const db = openDatabase(resolveDataDir(values));
  try {
    const names = new Map(new KeyStore(db).list().map((k) => [k.id, k.name]));
    const days = new UsageStore(db).daily(since);
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
  } finally {
    db.close();
  }
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd());
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (error: unknown) => {
    const expected = error instanceof ConfigError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    process.stderr.write(`paralon: ${error instanceof Error ? error.message : String(error)}\n`);
    if (!expected && error instanceof Error && error.stack) process.stderr.write(error.stack + '\n');
    process.exitCode = 1;
  },
);
