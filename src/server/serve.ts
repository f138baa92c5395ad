// `paralon serve`: resolve the configuration, start listening at once (/health says 503 while the
// model downloads and loads), print the banner, and drain on SIGINT/SIGTERM.
import type { DeviceName, Model } from '../index.js';
import { DEMO_MODEL_ID, loadLocalModel, localModel } from '../cli/load.js';
import { resolveModelSettings } from '../cli/options.js';
import { defaultModelId } from '../hub/index.js';
import type { ModelTask } from '../model/index.js';
import { createServer, type LogLevel } from './app.js';
import { bytesSetting, ConfigError, intSetting, isLoopback, numberSetting, stringSetting, type RawValues } from './config.js';
import { KeyStore } from './key-store.js';
import { openDatabase } from './database.js';

export { DEMO_MODEL_ID };

/** Requests waiting for the engine at most; more get 429 (clients retry with backoff). */
const DEFAULT_MAX_WAITING = 256;

export interface ServeConfig {
  dataDir: string;
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
  const common = resolveModelSettings(values, env);
  const { model, revision, hfToken, dataDir, device, threads, maxModelLen, kvCacheMemory, logLevel } = common;
  const task = stringSetting(values, env, 'task');
  if (task !== undefined && task !== 'generate' && task !== 'embed')
    throw new ConfigError(`--task must be generate or embed, got '${task}'`);
  return {
    dataDir,
    model,
    revision,
    hfToken,
    modelId: stringSetting(values, env, 'served-model-name') ?? (model === undefined ? DEMO_MODEL_ID : defaultModelId(model)),
    task: task as ModelTask | undefined,
    device,
    threads,
    host: stringSetting(values, env, 'host') ?? '127.0.0.1',
    port: intSetting(values, env, 'port', 0, 65535) ?? 8000,
    maxModelLen,
    kvCacheMemory,
    maxNumSeqs: intSetting(values, env, 'max-num-seqs', 1),
    maxNumBatchedTokens: intSetting(values, env, 'max-num-batched-tokens', 1),
    maxWaiting: intSetting(values, env, 'max-waiting', 0) ?? DEFAULT_MAX_WAITING,
    bodyLimit: bytesSetting(values, env, 'body-limit'),
    shutdownGraceMs: (numberSetting(values, env, 'shutdown-grace', 0) ?? 10) * 1000,
    logLevel,
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
          maxModelLen: config.maxModelLen,
          kvCacheMemory: config.kvCacheMemory,
          maxNumSeqs: config.maxNumSeqs,
          maxNumBatchedTokens: config.maxNumBatchedTokens,
          maxWaiting: config.maxWaiting,
        },
        process.stderr,
        true,
      );
    },
  );
  loading.catch(() => {}); // handled below, after listening
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

/** Runs `fn` on the key store of `dataDir` and closes the database. */
export function withKeyStore<T>(dataDir: string, fn: (keys: KeyStore) => T): T {
  const db = openDatabase(dataDir);
  try {
    return fn(new KeyStore(db));
  } finally {
    db.close();
  }
}
