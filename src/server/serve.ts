// `paralon serve`: resolve the configuration, start listening at once (/health says 503 while the
// model loads), load the model, print the banner, and drain on SIGINT/SIGTERM.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadModel, writeDemoModel, type DeviceName, type Model } from '../index.js';
import type { ModelTask } from '../model/index.js';
import { createServer, type LogLevel } from './app.js';
import { bytesSetting, ConfigError, intSetting, isLoopback, numberSetting, resolveDataDir, stringSetting, type RawValues } from './config.js';
import { KeyStore } from './key-store.js';
import { openDatabase } from './database.js';

/** The model id of the embedded demo model. */
export const DEMO_MODEL_ID = 'paralon-demo';

/** Requests waiting for the engine at most; more get 429 (clients retry with backoff). */
const DEFAULT_MAX_WAITING = 256;

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export interface ServeConfig {
  dataDir: string;
  /** null: the demo model under <dataDir>/demo-model. */
  modelDir: string | null;
  modelId: string;
  /** Undefined: detected from the checkpoint (see LoadModelOptions.task). */
  task?: ModelTask;
  device: DeviceName | 'auto';
  threads?: number;
  host: string;
  port: number;
  maxModelLen?: number;
  kvCacheMemory?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  maxWaiting: number;
  bodyLimit?: number;
  shutdownGraceMs: number;
  logLevel?: LogLevel;
}

/** Flags (parseArgs values) > PARALON_* environment > defaults; throws ConfigError on a bad value. */
export function resolveServeConfig(values: RawValues, env: NodeJS.ProcessEnv = process.env): ServeConfig {
  const modelDir = stringSetting(values, env, 'model');
  const logLevel = stringSetting(values, env, 'log-level');
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel as LogLevel))
    throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${logLevel}'`);
  const device = stringSetting(values, env, 'device') ?? 'auto';
  if (!/^(auto|cpu|cuda|cuda:\d+|cuda-sim)$/.test(device))
    throw new ConfigError(`--device must be auto, cpu, cuda, cuda:N or cuda-sim, got '${device}'`);
  const task = stringSetting(values, env, 'task');
  if (task !== undefined && task !== 'generate' && task !== 'embed')
    throw new ConfigError(`--task must be generate or embed, got '${task}'`);
  const resolvedModelDir = modelDir === undefined ? null : path.resolve(modelDir);
  const modelId =
    stringSetting(values, env, 'served-model-name') ??
    (resolvedModelDir === null ? DEMO_MODEL_ID : path.basename(resolvedModelDir).toLowerCase());
  return {
    dataDir: resolveDataDir(values, env),
    modelDir: resolvedModelDir,
    modelId,
    task: task as ModelTask | undefined,
    device: device as DeviceName | 'auto',
    threads: intSetting(values, env, 'threads', 1, 1024),
    host: stringSetting(values, env, 'host') ?? '127.0.0.1',
    port: intSetting(values, env, 'port', 0, 65535) ?? 8000,
    maxModelLen: intSetting(values, env, 'max-model-len', 2),
    kvCacheMemory: bytesSetting(values, env, 'kv-cache-memory'),
    maxNumSeqs: intSetting(values, env, 'max-num-seqs', 1),
    maxNumBatchedTokens: intSetting(values, env, 'max-num-batched-tokens', 1),
    maxWaiting: intSetting(values, env, 'max-waiting', 0) ?? DEFAULT_MAX_WAITING,
    bodyLimit: bytesSetting(values, env, 'body-limit'),
    shutdownGraceMs: (numberSetting(values, env, 'shutdown-grace', 0) ?? 10) * 1000,
    logLevel: logLevel as LogLevel | undefined,
  };
}

export async function serve(config: ServeConfig): Promise<void> {
  const out = (line = '') => process.stderr.write(line + '\n');
  const keysExist = withKeyStore(config.dataDir, (keys) => keys.hasActiveKeys());
  let host = config.host;
  if (!keysExist && !isLoopback(host)) {
    out(`No API key exists, so the server runs open and binds to 127.0.0.1 instead of ${host}.`);
    out('Create one with `paralon keys create --name NAME` to serve on other interfaces.');
    host = '127.0.0.1';
  }

  let modelDir = config.modelDir;
  if (modelDir === null) {
    modelDir = path.join(config.dataDir, 'demo-model');
    if (!existsSync(path.join(modelDir, 'config.json'))) {
      out(`Writing the demo model (random weights) to ${modelDir} …`);
      writeDemoModel(modelDir);
    }
  }

  const loading = loadModel(modelDir, {
    id: config.modelId,
    task: config.task,
    device: config.device,
    threads: config.threads,
    maxModelLen: config.maxModelLen,
    kvCacheMemory: config.kvCacheMemory,
    maxNumSeqs: config.maxNumSeqs,
    maxNumBatchedTokens: config.maxNumBatchedTokens,
    maxWaiting: config.maxWaiting,
    onProgress: process.stderr.isTTY ? progressLine : undefined,
  });
  const app = createServer({
    model: loading,
    modelId: config.modelId,
    dataDir: config.dataDir,
    bodyLimit: config.bodyLimit,
    shutdownGraceMs: config.shutdownGraceMs,
    logLevel: config.logLevel,
  });
  await app.listen({ host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  out(`Loading ${modelDir} … (GET /health answers 503 until it is ready)`);

  let model: Model;
  try {
    model = await loading;
  } catch (error) {
    await app.close();
    throw error;
  }
  out();
  out(`Paralon is serving '${config.modelId}' on ${model.device.name} (${model.device.description})`);
  if (config.modelDir === null) out(`  '${config.modelId}' is the demo model: random weights, so its output is random noise.`);
  out(`  context ${model.contextLength} tokens, KV cache ${model.kvCacheTokens} tokens`);
  out(`  OpenAI-compatible API at http://${urlHost}:${port}/v1   (health: /health, metrics: /metrics)`);
  out(`  Playground at http://${urlHost}:${port}/`);
  out(
    app.paralon.keysRequired
      ? '  API keys: required (Authorization: Bearer prlc_…)'
      : `  API keys: none exist, so the server is open to anyone who can reach ${host}; \`paralon keys create --name NAME\` requires them`,
  );
  out('  Ctrl-C drains in-flight requests and exits.');

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      out(`${signal} again: exiting without draining.`);
      process.exit(1);
    }
    stopping = true;
    out(`\n${signal}: draining (up to ${config.shutdownGraceMs / 1000} s) …`);
    app
      .close()
      .then(() => {
        model.dispose();
        out('Stopped.');
        process.exit(0);
      })
      .catch((error: unknown) => {
        out(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

function progressLine(loaded: number, total: number): void {
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  process.stderr.write(`\r  weights ${mib(loaded)} / ${mib(total)} MiB${loaded >= total ? '\n' : ''}`);
}

/** Runs `fn` on the key store of `dataDir` and closes the database. */
export function withKeyStore<T>(dataDir: string, fn: (keys: KeyStore) => T): T {
  const db = openDatabase(dataDir);
  try {
    return fn(new KeyStore(db));
  } finally {
    db.close();
  }
}
