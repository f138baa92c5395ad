// `paralon serve`: resolve the configuration, start listening at once (/health says 503 while the
// model downloads and loads), print the banner, and drain on SIGINT/SIGTERM.
import type { CpuPrecision, DeviceName, Model } from '../index.js';
import { DEMO_MODEL_ID, loadLocalModel, localModel } from '../cli/load.js';
import { resolveModelSettings } from '../cli/options.js';
import { existsSync } from 'node:fs';
import { defaultModelId as hubModelId } from '../hub/index.js';
import type { ModelTask } from '../model/index.js';
import { defaultModelId as localModelId } from '../model/gguf/index.js';
import { KV_CACHE_DTYPES, type KvCacheDType } from '../kv/pool.js';
import { createServer, type LogLevel } from './app.js';
import {
  bytesSetting,
  ConfigError,
  intSetting,
  isLoopback,
  numberSetting,
  resolveDatabaseUrl,
  stringSetting,
  type RawValues,
} from './config.js';
import { DEFAULT_REPLICA_TIMEOUT_MS } from './replica.js';
import { withStore } from './store/open.js';

export { DEMO_MODEL_ID };

/** Requests waiting for the engine at most; more get 429 (clients retry with backoff). */
const DEFAULT_MAX_WAITING = 256;

export interface ServeConfig {
  dataDir: string;
  /** postgres:// URL of the store shared by replicas; absent: SQLite under dataDir. */
  databaseUrl?: string;
  replicaId?: string;
  replicaTimeoutMs: number;
  /** A checkpoint directory, a .gguf file or a hub id; undefined: the demo model under <dataDir>/demo-model. */
  model?: string;
  /** Hub revision (branch, tag or commit) and token. */
  revision?: string;
  hfToken?: string;
  modelId: string;
  /** Undefined: detected from the checkpoint (see LoadModelOptions.task). */
  task?: ModelTask;
  device: DeviceName | 'auto';
  threads?: number;
  cpuPrecision?: CpuPrecision;
  host: string;
  port: number;
  maxModelLen?: number;
  /** config.json rope_scaling override (--rope-scaling JSON); null: none. */
  ropeScaling?: Record<string, unknown> | null;
  kvCacheMemory?: number;
  kvCacheDType: KvCacheDType | 'auto';
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
  const common = resolveModelSettings(values, env);
  const { model, revision, hfToken, dataDir, device, threads, cpuPrecision, maxModelLen, kvCacheMemory, logLevel } = common;
  const task = stringSetting(values, env, 'task');
  if (task !== undefined && task !== 'generate' && task !== 'embed')
    throw new ConfigError(`--task must be generate or embed, got '${task}'`);
  return {
    dataDir,
    databaseUrl: resolveDatabaseUrl(values, env),
    replicaId: stringSetting(values, env, 'replica-id'),
    replicaTimeoutMs: (numberSetting(values, env, 'replica-timeout', 0.1) ?? DEFAULT_REPLICA_TIMEOUT_MS / 1000) * 1000,
    model,
    revision,
    hfToken,
    // A local directory or GGUF is named after its file (quantization suffix dropped), a hub model by its id.
    modelId: stringSetting(values, env, 'served-model-name') ?? (model === undefined ? DEMO_MODEL_ID : existsSync(model) ? localModelId(model) : hubModelId(model)),
    task: task as ModelTask | undefined,
    device,
    threads,
    cpuPrecision,
    host: stringSetting(values, env, 'host') ?? '127.0.0.1',
    port: intSetting(values, env, 'port', 0, 65535) ?? 8000,
    maxModelLen,
    ropeScaling: ropeScalingSetting(stringSetting(values, env, 'rope-scaling')),
    kvCacheMemory,
    kvCacheDType: kvCacheDTypeSetting(values, env),
    maxNumSeqs: intSetting(values, env, 'max-num-seqs', 1),
    maxNumBatchedTokens: intSetting(values, env, 'max-num-batched-tokens', 1),
    maxWaiting: intSetting(values, env, 'max-waiting', 0) ?? DEFAULT_MAX_WAITING,
    grammarCompileTimeoutMs: secondsToMs(numberSetting(values, env, 'grammar-compile-timeout', 0.001, 600)),
    grammarWorkers: intSetting(values, env, 'grammar-workers', 1, 64),
    bodyLimit: bytesSetting(values, env, 'body-limit'),
    shutdownGraceMs: (numberSetting(values, env, 'shutdown-grace', 0) ?? 10) * 1000,
    logLevel,
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

function kvCacheDTypeSetting(values: RawValues, env: NodeJS.ProcessEnv): KvCacheDType | 'auto' {
  const v = stringSetting(values, env, 'kv-cache-dtype') ?? 'auto';
  const allowed = ['auto', ...KV_CACHE_DTYPES];
  if (!allowed.includes(v)) throw new ConfigError(`--kv-cache-dtype (PARALON_KV_CACHE_DTYPE) must be one of ${allowed.join(', ')}, got '${v}'`);
  return v as KvCacheDType | 'auto';
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

  const loading = localModel({ spec: config.model, dataDir: config.dataDir, revision: config.revision, hfToken: config.hfToken }, process.stderr).then(
    (local) => {
      out(`Loading ${local.path} …`);
      return loadLocalModel(
        local,
        {
          id: config.modelId,
          task: config.task,
          device: config.device,
          threads: config.threads,
          cpuPrecision: config.cpuPrecision,
          maxModelLen: config.maxModelLen,
          ropeScaling: config.ropeScaling,
          kvCacheMemory: config.kvCacheMemory,
          kvCacheDType: config.kvCacheDType,
          maxNumSeqs: config.maxNumSeqs,
          maxNumBatchedTokens: config.maxNumBatchedTokens,
          maxWaiting: config.maxWaiting,
          grammarCompileTimeoutMs: config.grammarCompileTimeoutMs,
          grammarWorkers: config.grammarWorkers,
        },
        process.stderr,
        true,
      );
    },
  );
  loading.catch(() => {}); // handled below, after listening
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
  out(`Listening on http://${urlHost}:${port} (GET /health answers 503 until the model is ready)`);

  let model: Model;
  try {
    model = await loading;
  } catch (error) {
    await app.close();
    throw error;
  }
  out();
  out(`Paralon is serving '${config.modelId}' on ${model.device.name} (${model.device.description})`);
  if (config.model === undefined) out(`  '${config.modelId}' is the demo model: random weights, so its output is random noise.`);
  out(`  context ${model.contextLength} tokens, KV cache ${model.kvCacheTokens} tokens (${model.kvCacheDType})`);
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
