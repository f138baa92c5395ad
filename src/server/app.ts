// createServer(): the Fastify instance behind `paralon serve`, also what the tests start on port 0. It
// opens the store (SQLite under dataDir, or PostgreSQL at databaseUrl) and registers as a replica.
//
//   /health, /metrics            open (health checks and scrapers carry no key)
//   /, /playground[/assets/*]    the playground page, open (its API calls carry the user's key)
//   /v1/...                      one scoped plugin: bearer-key auth, then chat/completions, completions,
//                                responses, embeddings, models, usage; request and response JSON schemas on every route
//   /tokenize, /detokenize       vLLM's tokenizer routes, behind the same keys
//
// Requests are validated strictly (no type coercion, unknown fields rejected) and every error leaves
// as OpenAI's error object (errors.ts). The model may still be loading when the server starts:
// /health answers 503 and /v1 routes 503 until it is ready.
import Fastify, { type FastifyInstance } from 'fastify';
import { ConnectionTracker } from './connections.js';
import { ServerContext, type ServedModel } from './context.js';
import { installErrorHandlers, shuttingDown } from './errors.js';
import { GenerationTracker } from './generation.js';
import { Sampled, ServerMetrics } from './metrics.js';
import { chatCompletionsRoutes } from './routes/chat-completions.js';
import { completionsRoutes } from './routes/completions.js';
import { embeddingsRoutes } from './routes/embeddings.js';
import { healthRoutes } from './routes/health.js';
import { modelsRoutes } from './routes/models.js';
import { playgroundRoutes } from './playground/plugin.js';
import { responsesRoutes } from './routes/responses.js';
import { tokenizeRoutes } from './routes/tokenize.js';
import { usageRoutes } from './routes/usage.js';
import { installAuth } from './auth.js';
import { sharedSchemas } from './schemas/common.js';
import { openStore } from './store/open.js';
import { DEFAULT_REPLICA_TIMEOUT_MS, defaultReplicaId, ReplicaHeartbeat } from './replica.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export interface ServerOptions {
  /** The model, or its loading promise (the server answers 503 until it resolves). */
  model: ServedModel | Promise<ServedModel>;
  /** The id clients put in `model`. */
  modelId: string;
  /** Holds paralon.db (keys and usage) unless databaseUrl is given. */
  dataDir: string;
  /** A postgres:// URL: keys, limits and usage shared with every replica using it. */
  databaseUrl?: string;
  /** This process's id in usage rows; a restart under the same id marks its earlier rows interrupted at once. */
  replicaId?: string;
  /** After this long without a heartbeat a replica's running rows become interrupted (default 30 s). */
  replicaTimeoutMs?: number;
  /** Largest request body in bytes (default 4 MiB); larger ones get 413. */
  bodyLimit?: number;
  /** How long a shutdown waits for in-flight generations before cancelling them (default 10 s). */
  shutdownGraceMs?: number;
  /** Fastify's logger (pino, JSON lines on stdout); off when absent. Never logs keys, bodies or prompts. */
  logLevel?: LogLevel;
}

export interface ServerInfo {
  /** Whether /v1 routes require a key (some key existed at start). */
  keysRequired: boolean;
  context: ServerContext;
}

declare module 'fastify' {
  interface FastifyInstance {
    paralon: ServerInfo;
  }
}

export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logLevel ? { level: options.logLevel } : false,
    bodyLimit: options.bodyLimit ?? 4 * 1024 * 1024,
    // Draining is answered by our own hook below, with an OpenAI error body.
    return503OnClosing: false,
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, allowUnionTypes: true } },
  });

  const logError = (error: unknown, message: string) => app.log.error({ err: error }, message);
  const store = await openStore(options);
  let replica: ReplicaHeartbeat;
  let keysRequired: boolean;
  try {
    replica = new ReplicaHeartbeat(store, options.replicaId ?? defaultReplicaId(), options.replicaTimeoutMs ?? DEFAULT_REPLICA_TIMEOUT_MS, logError);
    await replica.start();
    keysRequired = await store.keys.hasActiveKeys();
  } catch (error) {
    await store.close();
    throw error;
  }
  const metrics = new ServerMetrics();
  const tracker = new GenerationTracker(store.usage, replica.id, metrics, logError);
  const ctx = new ServerContext(options.modelId, store.keys, store.usage, metrics, tracker, keysRequired);
  app.decorate('paralon', { keysRequired, context: ctx });
  addEngineGauges(metrics, ctx);

  Promise.resolve(options.model).then(
    (model) => ctx.setModel(model),
    (error) => {
      ctx.setLoadError(error);
      app.log.error({ err: error }, 'the model failed to load');
    },
  );

  for (const schema of sharedSchemas) app.addSchema(schema);
  installErrorHandlers(app);

  app.addHook('onRequest', async (request, reply) => {
    if (tracker.draining && request.url !== '/health') {
      reply.header('connection', 'close');
      throw shuttingDown();
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    metrics.requests.inc({ route: request.routeOptions.url ?? 'unmatched', code: String(reply.statusCode) });
  });

  app.register(healthRoutes, { ctx });
  app.register(playgroundRoutes);
  app.register(
    async (v1) => {
      installAuth(v1, ctx);
      await v1.register(chatCompletionsRoutes, { ctx });
      await v1.register(completionsRoutes, { ctx });
      await v1.register(responsesRoutes, { ctx });
      await v1.register(embeddingsRoutes, { ctx });
      await v1.register(modelsRoutes, { ctx });
      await v1.register(usageRoutes, { ctx });
    },
    { prefix: '/v1' },
  );
  // vLLM's tokenizer routes sit outside /v1, behind the same keys.
  app.register(async (root) => {
    installAuth(root, ctx);
    await root.register(tokenizeRoutes, { ctx });
  });

  // Shutdown: stop listening (Fastify closes the listener right after preClose), answer new requests on
  // open connections with 503, let generations finish within the grace period (then cancel them), close
  // the idle connections, and close the store once every usage row is written.
  const connections = new ConnectionTracker(app.server);
  let drained: Promise<void> = Promise.resolve();
  app.addHook('preClose', async () => {
    drained = tracker.drain(options.shutdownGraceMs ?? 10_000).then(() => connections.closeIdle());
  });
  app.addHook('onClose', async () => {
    await drained;
    await replica.stop();
    await store.close();
  });
  return app;
}

function addEngineGauges(metrics: ServerMetrics, ctx: ServerContext): void {
  const stat = (read: (s: ReturnType<ServedModel['stats']>) => number) => () => {
    const model = ctx.loadedModel;
    return model ? read(model.stats()) : 0;
  };
  const r = metrics.registry;
  r.add(new Sampled('paralon_requests_running', 'Sequences in the running batch.', stat((s) => s.engine.running)));
  r.add(new Sampled('paralon_queue_depth', 'Requests waiting for the engine to admit them.', stat((s) => s.engine.waiting)));
  r.add(new Sampled('paralon_kv_blocks_used', 'KV cache blocks in use.', stat((s) => s.kv.usedBlocks)));
  r.add(new Sampled('paralon_kv_blocks_total', 'KV cache blocks in the pool.', stat((s) => s.kv.numBlocks)));
  r.add(new Sampled('paralon_kv_blocks_cached', 'Full KV blocks findable by prefix hash.', stat((s) => s.kv.cachedBlocks)));
  r.add(new Sampled('paralon_prefix_cache_hit_tokens_total', 'Prompt tokens served from the prefix cache.', stat((s) => s.kv.prefixHitTokens), 'counter'));
  r.add(new Sampled('paralon_prefix_cache_query_tokens_total', 'Prompt tokens looked up in the prefix cache.', stat((s) => s.kv.prefixQueryTokens), 'counter'));
  r.add(new Sampled('paralon_engine_preemptions_total', 'Requests preempted to free KV blocks.', stat((s) => s.engine.preemptions), 'counter'));
  r.add(new Sampled('paralon_http_generations_in_flight', 'Generation requests being answered.', () => ctx.tracker.size));
}
