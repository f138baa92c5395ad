// Typed access to a GGUF's metadata: each getter checks the value's type and range, and every error
// names the file and the key. Integer getters accept any integer value type that holds the value
// (converters differ: u32 here, i32 or u64 there), float getters f32 or f64.
import type { GgufScalar, GgufValue } from './types.js';

const INTEGER_KINDS = new Set(['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'u64', 'i64']);

export class GgufMetadata {
  readonly file: string;
  readonly #map: ReadonlyMap<string, GgufValue>;

  constructor(map: ReadonlyMap<string, GgufValue>, file: string) {
    this.#map = map;
    this.file = file;
  }

  has(key: string): boolean {
    return this.#map.has(key);
  }

  get(key: string): GgufValue | undefined {
    return this.#map.get(key);
  }

  get keys(): string[] {
    return [...this.#map.keys()];
  }

  #fail(key: string, what: string): never {
    const v = this.#map.get(key);
    const got = v === undefined ? 'missing' : v.kind === 'array' ? `an array of ${v.values.length} ${v.itemKind}` : `${v.kind} ${String(v.value)}`;
    throw new Error(`${this.file}: ${key} must be ${what} (got ${got})`);
  }

  #scalar(key: string, required: boolean): GgufScalar | undefined {
    const v = this.#map.get(key);
    if (v === undefined) {
      if (required) throw new Error(`${this.file}: missing metadata key ${key}`);
      return undefined;
    }
    if (v.kind === 'array') this.#fail(key, 'a single value');
    return v;
  }

  string(key: string): string;
  string(key: string, optional: true): string | undefined;
  string(key: string, optional = false): string | undefined {
    const v = this.#scalar(key, !optional);
    if (v === undefined) return undefined;
    if (v.kind !== 'string') this.#fail(key, 'a string');
    return v.value;
  }

  /** A non-negative integer that fits a JS number, at least `min`. */
  uint(key: string, min?: number): number;
  uint(key: string, min: number | undefined, optional: true): number | undefined;
  uint(key: string, min = 0, optional = false): number | undefined {
    const v = this.#scalar(key, !optional);
    if (v === undefined) return undefined;
    if (!INTEGER_KINDS.has(v.kind)) this.#fail(key, 'an integer');
    const n = typeof v.value === 'bigint' ? (v.value <= BigInt(Number.MAX_SAFE_INTEGER) && v.value >= 0n ? Number(v.value) : -1) : (v.value as number);
    if (!(n >= min)) this.#fail(key, `an integer ≥ ${min}`);
    return n;
  }

  /** A finite float, greater than `above` when given. */
  float(key: string, above?: number): number;
  float(key: string, above: number | undefined, optional: true): number | undefined;
  float(key: string, above?: number, optional = false): number | undefined {
    const v = this.#scalar(key, !optional);
    if (v === undefined) return undefined;
    if (v.kind !== 'f32' && v.kind !== 'f64') this.#fail(key, 'a float');
    if (!Number.isFinite(v.value) || (above !== undefined && !(v.value > above))) this.#fail(key, above === undefined ? 'finite' : `a finite float > ${above}`);
    return v.value;
  }

  bool(key: string): boolean | undefined {
    const v = this.#scalar(key, false);
    if (v === undefined) return undefined;
    if (v.kind !== 'bool') this.#fail(key, 'true or false');
    return v.value;
  }

  strings(key: string): string[];
  strings(key: string, optional: true): string[] | undefined;
  strings(key: string, optional = false): string[] | undefined {
    const v = this.#map.get(key);
    if (v === undefined) {
      if (optional) return undefined;
      throw new Error(`${this.file}: missing metadata key ${key}`);
    }
    if (v.kind !== 'array' || v.itemKind !== 'string') this.#fail(key, 'an array of strings');
    return v.values as string[];
  }

  /** An array of 8- to 32-bit integers. */
  ints(key: string): number[];
  ints(key: string, optional: true): number[] | undefined;
  ints(key: string, optional = false): number[] | undefined {
    const v = this.#map.get(key);
    if (v === undefined) {
      if (optional) return undefined;
      throw new Error(`${this.file}: missing metadata key ${key}`);
    }
    if (v.kind !== 'array' || !INTEGER_KINDS.has(v.itemKind) || v.itemKind === 'u64' || v.itemKind === 'i64')
      this.#fail(key, 'an array of integers');
    return v.values as number[];
  }
}
