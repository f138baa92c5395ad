// `paralon serve`: resolve the configuration, start listening at once (/health says 503 while the
// model loads), load the model, print the banner, and drain on SIGINT/SIGTERM.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadModel, writeDemoModel, type DeviceName, type Model } from '../index.js';
import type { ModelTask } from '../model/index.js';
import { createServer, type LogLevel } from './app.js';
import {
  bytesSetting,
  ConfigError,
  intSetting,
  isLoopback,
  numberSetting,
  resolveDatabaseUrl,
  resolveDataDir,
  stringSetting,
  type RawValues,
} from './config.js';
import { DEFAULT_REPLICA_TIMEOUT_MS } from './replica.js';
import { withStore } from './store/open.js';

/** The model id of the embedded demo model. */
export const DEMO_MODEL_ID = 'paralon-demo';

/** Requests waiting for the engine at most; more get 429 (clients retry with backoff). */
const DEFAULT_MAX_WAITING = 256;

const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export interface ServeConfig {
  dataDir: string;
  /** postgres:// URL of the store shared by replicas; absent: SQLite under dataDir. */
  databaseUrl?: string;
  replicaId?: string;
  replicaTimeoutMs: number;
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
  /** config.json rope_scaling override (--rope-scaling JSON); null: none. */
  ropeScaling?: Record<string, unknown> | null;
  kvCacheMemory?: number;
  maxNumSeqs?: number;
  maxNumBatchedTokens?: number;
  maxWaiting: number;
  /** Tools / response_format grammars compiling longer are refused with a 400. */
  grammarCompileTimeoutMs?: number;
  grammarWorkers?: number;
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
    databaseUrl: resolveDatabaseUrl(values, env),
    replicaId: stringSetting(values, env, 'replica-id'),
    replicaTimeoutMs: (numberSetting(values, env, 'replica-timeout', 0.1) ?? DEFAULT_REPLICA_TIMEOUT_MS / 1000) * 1000,
    modelDir: resolvedModelDir,
    modelId,
    task: task as ModelTask | undefined,
    device: device as DeviceName | 'auto',
    threads: intSetting(values, env, 'threads', 1, 1024),
    host: stringSetting(values, env, 'host') ?? '127.0.0.1',
    port: intSetting(values, env, 'port', 0, 65535) ?? 8000,
    maxModelLen: intSetting(values, env, 'max-model-len', 2),
    ropeScaling: ropeScalingSetting(stringSetting(values, env, 'rope-scaling')),
    kvCacheMemory: bytesSetting(values, env, 'kv-cache-memory'),
    maxNumSeqs: intSetting(values, env, 'max-num-seqs', 1),
    maxNumBatchedTokens: intSetting(values, env, 'max-num-batched-tokens', 1),
    maxWaiting: intSetting(values, env, 'max-waiting', 0) ?? DEFAULT_MAX_WAITING,
    grammarCompileTimeoutMs: secondsToMs(numberSetting(values, env, 'grammar-compile-timeout', 0.001, 600)),
    grammarWorkers: intSetting(values, env, 'grammar-workers', 1, 64),
    bodyLimit: bytesSetting(values, env, 'body-limit'),
    shutdownGraceMs: (numberSetting(values, env, 'shutdown-grace', 0) ?? 10) * 1000,
    logLevel: logLevel as LogLevel | undefined,
  };
}

function secondsToMs(seconds: number | undefined): number | undefined {
  return seconds === undefined ? undefined : seconds * 1000;
}

/** --rope-scaling: a JSON object in config.json's names (`{"rope_type":"yarn","factor":4,...}`) or null. */
function ropeScalingSetting(text: string | undefined): Record<string, unknown> | null | undefined {
  if (text === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`--rope-scaling must be JSON, e.g. '{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":32768}' (${(e as Error).message})`);
  }
  if (value !== null && (typeof value !== 'object' || Array.isArray(value)))
    throw new ConfigError(`--rope-scaling must be a JSON object or null, got ${text}`);
  return value as Record<string, unknown> | null;
}

export async function serve(config: ServeConfig): Promise<void> {
  const out = (line = '') => process.stderr.write(line + '\n');
  const keysExist = await withStore(config, (store) => store.keys.hasActiveKeys());
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
    ropeScaling: config.ropeScaling,
    kvCacheMemory: config.kvCacheMemory,
    maxNumSeqs: config.maxNumSeqs,
    maxNumBatchedTokens: config.maxNumBatchedTokens,
    maxWaiting: config.maxWaiting,
    grammarCompileTimeoutMs: config.grammarCompileTimeoutMs,
    grammarWorkers: config.grammarWorkers,
    onProgress: process.stderr.isTTY ? progressLine : undefined,
  });
  const app = await createServer({
    model: loading,
    modelId: config.modelId,
    dataDir: config.dataDir,
    databaseUrl: config.databaseUrl,
    replicaId: config.replicaId,
    replicaTimeoutMs: config.replicaTimeoutMs,
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
    // Still listening while draining: /health answers 503 (a balancer or readiness probe takes the
    // replica out) and new requests get 503 (nginx retries them on another replica) until the in-flight
    // generations are done; only then does the listener close.
    app.paralon.context.tracker
      .drain(config.shutdownGraceMs)
      .then(() => app.close())
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
