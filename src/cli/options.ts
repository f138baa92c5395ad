// The flags every command that loads a model shares (serve, run, chat), validated once.
import type { CpuPrecision, DeviceName } from '../runtime/index.js';
import type { LogLevel } from '../server/app.js';
import { bytesSetting, ConfigError, intSetting, resolveDataDir, stringSetting, type RawValues } from '../server/config.js';

export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'];

export const MODEL_OPTIONS = {
  'data-dir': { type: 'string' },
  model: { type: 'string' },
  revision: { type: 'string' },
  'hf-token': { type: 'string' },
  device: { type: 'string' },
  threads: { type: 'string' },
  'cpu-precision': { type: 'string' },
  'max-model-len': { type: 'string' },
  'kv-cache-memory': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

export const MODEL_OPTIONS_HELP = `  --model ID|DIR|FILE          a Hugging Face id (Qwen/Qwen3-0.6B, Qwen/Qwen3-8B-GGUF:Q4_K_M), a checkpoint
                               directory or a .gguf file (default: the random-weight demo model)
  --revision REV               hub branch, tag or commit (default main)
  --hf-token TOKEN             for gated and private repos (default: HF_TOKEN)
  --device NAME                auto | cpu | cuda | cuda:N | cuda-sim (default auto: first GPU, else CPU)
  --threads N                  CPU worker threads (default: one per core)
  --cpu-precision P            exact | fast: fast rounds activations to bf16 for bf16 weights (AVX512-BF16
                               dot products) and to int8 blocks for quantized weights when decoding
                               (VNNI/AVX2 integer dot products, as llama.cpp); exact where the CPU lacks
                               them (default exact)
  --max-model-len N            prompt + completion tokens per request (default: the model's)
  --kv-cache-memory SIZE       KV cache size, e.g. 2GiB
  --log-level LEVEL            fatal | error | warn | info | debug | trace (debug also prints error stacks)
`;

export interface ModelSettings {
  dataDir: string;
  model?: string;
  revision?: string;
  hfToken?: string;
  device: DeviceName | 'auto';
  threads?: number;
  cpuPrecision?: CpuPrecision;
  maxModelLen?: number;
  kvCacheMemory?: number;
  logLevel?: LogLevel;
}

/** Flags (parseArgs values) > PARALON_* environment > defaults; throws ConfigError on a bad value. */
export function resolveModelSettings(values: RawValues, env: NodeJS.ProcessEnv = process.env): ModelSettings {
  const logLevel = stringSetting(values, env, 'log-level');
  if (logLevel !== undefined && !LOG_LEVELS.includes(logLevel as LogLevel))
    throw new ConfigError(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got '${logLevel}'`);
  const device = stringSetting(values, env, 'device') ?? 'auto';
  const cpuPrecision = stringSetting(values, env, 'cpu-precision');
  if (cpuPrecision !== undefined && cpuPrecision !== 'exact' && cpuPrecision !== 'fast')
    throw new ConfigError(`--cpu-precision must be exact or fast, got '${cpuPrecision}'`);
  if (!/^(auto|cpu|cuda|cuda:\d+|cuda-sim)$/.test(device)) throw new ConfigError(`--device must be auto, cpu, cuda, cuda:N or cuda-sim, got '${device}'`);
  return {
    dataDir: resolveDataDir(values, env),
    model: stringSetting(values, env, 'model'),
    revision: stringSetting(values, env, 'revision'),
    hfToken: stringSetting(values, env, 'hf-token'),
    device: device as DeviceName | 'auto',
    threads: intSetting(values, env, 'threads', 1, 1024),
    cpuPrecision: cpuPrecision as CpuPrecision | undefined,
    maxModelLen: intSetting(values, env, 'max-model-len', 2),
    kvCacheMemory: bytesSetting(values, env, 'kv-cache-memory'),
    logLevel: logLevel as LogLevel | undefined,
  };
}

/** True when `argv` asks for debug output (stacks with errors), before any parsing succeeded. */
export function wantsDebug(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): boolean {
  const i = argv.findIndex((a) => a === '--log-level' || a.startsWith('--log-level='));
  const level = i < 0 ? env.PARALON_LOG_LEVEL : argv[i].includes('=') ? argv[i].split('=')[1] : argv[i + 1];
  return level === 'debug' || level === 'trace';
}
