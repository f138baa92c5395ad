// Configuration of the CLI: each setting comes from its flag, else its PARALON_* environment variable
// (the flag's name in upper snake case: --max-num-seqs ↔ PARALON_MAX_NUM_SEQS), else its default, and
// is validated once, here.
import os from 'node:os';
import path from 'node:path';

export type RawValues = Record<string, string | boolean | undefined>;

/** --data-dir, else PARALON_DATA_DIR, else ~/.paralon. */
export function resolveDataDir(values: RawValues, env: NodeJS.ProcessEnv = process.env): string {
  const raw = stringSetting(values, env, 'data-dir');
  return path.resolve(raw ?? path.join(os.homedir(), '.paralon'));
}

/** --database, else PARALON_DATABASE_URL (the usual name for a URL with credentials); absent: SQLite. */
export function resolveDatabaseUrl(values: RawValues, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const fromFlag = values.database;
  if (typeof fromFlag === 'string' && fromFlag !== '') return fromFlag;
  const fromEnv = env.PARALON_DATABASE_URL;
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

export function envName(flag: string): string {
  return 'PARALON_' + flag.toUpperCase().replace(/-/g, '_');
}

/** The flag's value, else its environment variable, else undefined (empty strings count as unset). */
export function stringSetting(values: RawValues, env: NodeJS.ProcessEnv, flag: string): string | undefined {
  const fromFlag = values[flag];
  if (typeof fromFlag === 'string' && fromFlag !== '') return fromFlag;
  const fromEnv = env[envName(flag)];
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv;
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** An integer setting within [min, max]. */
export function intSetting(values: RawValues, env: NodeJS.ProcessEnv, flag: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = stringSetting(values, env, flag);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(value) || value < min || value > max)
    throw new ConfigError(`--${flag} (${envName(flag)}) must be an integer in [${min}, ${max}], got '${raw}'`);
  return value;
}

/** A positive number setting (seconds, fractions). */
export function numberSetting(values: RawValues, env: NodeJS.ProcessEnv, flag: string, min: number, max = Infinity): number | undefined {
  const raw = stringSetting(values, env, flag);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max)
    throw new ConfigError(`--${flag} (${envName(flag)}) must be a number in [${min}, ${max}], got '${raw}'`);
  return value;
}

const UNITS: Record<string, number> = { '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 };

/** A size in bytes: `4096`, `512MiB`, `2GiB`, `1.5GB`. */
export function bytesSetting(values: RawValues, env: NodeJS.ProcessEnv, flag: string): number | undefined {
  const raw = stringSetting(values, env, flag);
  if (raw === undefined) return undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b|b)?\s*$/i.exec(raw);
  const unit = UNITS[(m?.[2] ?? '').toLowerCase()];
  const bytes = m && unit ? Math.floor(Number(m[1]) * unit) : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1)
    throw new ConfigError(`--${flag} (${envName(flag)}) must be a size such as 4096, 512MiB or 2GiB, got '${raw}'`);
  return bytes;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}
