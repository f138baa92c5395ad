// Fuzzing the GGUF reader: 12,000 files mutated from the valid fixture (byte flips, boundary values
// written over 8-byte fields, truncations, insertions, deletions, duplicated spans). Each must either
// parse — with every tensor inside the file and not overlapping — and then go through the qwen3 and
// tokenizer metadata checks, or fail with an Error naming the file. Anything else (a TypeError, a
// RangeError from a typed array, a hang) fails the test.
import { describe, expect, it } from 'vitest';
import { GgufMetadata, bufferSource, parseGgufHeader, qwen3ConfigFromGguf, tokenizerFromGguf } from '../../../src/model/gguf/index.js';
import { mulberry32 } from '../../reference/random.js';
import { FIXTURE_NAME, fixtureBytes } from './fixture.js';

const ITERATIONS = 12_000;
const BOUNDARY_U64 = [0n, 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n];

function mutate(base: Uint8Array, random: () => number): Uint8Array {
  const int = (n: number) => Math.floor(random() * n);
  let bytes = Buffer.from(base);
  const rounds = 1 + int(3);
  for (let r = 0; r < rounds; r++) {
    switch (int(6)) {
      case 0: // flip 1–8 random bytes
        if (bytes.length === 0) break;
        for (let i = 1 + int(8); i > 0; i--) bytes[int(bytes.length)] ^= 1 + int(255);
        break;
      case 1: { // a boundary value (or one near the file size) over an 8-byte field
        if (bytes.length < 8) break;
        const at = int(bytes.length - 7);
        const v = int(3) === 0 ? BigInt(bytes.length + int(64) - 32) : BOUNDARY_U64[int(BOUNDARY_U64.length)];
        bytes.writeBigUInt64LE(BigInt.asUintN(64, v), at);
        break;
      }
      case 2: // truncate
        bytes = bytes.subarray(0, int(bytes.length));
        break;
      case 3: { // insert random bytes
        const at = int(bytes.length + 1);
        const extra = Buffer.from(Array.from({ length: 1 + int(16) }, () => int(256)));
        bytes = Buffer.concat([bytes.subarray(0, at), extra, bytes.subarray(at)]);
        break;
      }
      case 4: { // delete a span
        const at = int(bytes.length);
        bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1 + int(16))]);
        break;
      }
      case 5: { // duplicate a span elsewhere
        const from = int(bytes.length);
        const span = bytes.subarray(from, from + 1 + int(32));
        const to = int(bytes.length);
        bytes = Buffer.concat([bytes.subarray(0, to), span, bytes.subarray(to)]);
        break;
      }
    }
  }
  return bytes;
}

describe('GGUF reader fuzz', () => {
  it(`survives ${ITERATIONS.toLocaleString('en')} mutated files: a clean parse or an error naming the file`, () => {
    const base = fixtureBytes();
    const random = mulberry32(20261205);
    const outcomes = { parsed: 0, rejected: 0, metadataOk: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const bytes = mutate(base, random);
      let header;
      try {
        header = parseGgufHeader(bufferSource(bytes), FIXTURE_NAME);
      } catch (e) {
        if (!(e instanceof Error) || e.constructor !== Error || !e.message.startsWith(`${FIXTURE_NAME}: `))
          throw new Error(`iteration ${i}: unexpected ${String(e)}`, { cause: e });
        outcomes.rejected++;
        continue;
      }
      outcomes.parsed++;
      const sorted = [...header.tensors].sort((a, b) => a.fileOffset - b.fileOffset);
      sorted.forEach((t, j) => {
        expect(t.fileOffset + t.byteLength, `iteration ${i}: ${t.name}`).toBeLessThanOrEqual(bytes.length);
        if (j > 0) expect(t.fileOffset, `iteration ${i}: ${t.name}`).toBeGreaterThanOrEqual(sorted[j - 1].fileOffset + sorted[j - 1].byteLength);
      });
      const meta = new GgufMetadata(header.metadata, FIXTURE_NAME);
      try {
        const tok = tokenizerFromGguf(meta);
        qwen3ConfigFromGguf(meta, { vocabSize: 12, tied: true, dtype: 'bf16', eosTokenIds: tok.eosTokenIds.filter((id) => id < 12) });
        outcomes.metadataOk++;
      } catch (e) {
        if (!(e instanceof Error) || e.constructor !== Error || !e.message.startsWith(`${FIXTURE_NAME}: `))
          throw new Error(`iteration ${i}: unexpected ${String(e)}`, { cause: e });
      }
    }
    // The mutations reach both outcomes in bulk (a fuzzer that only ever fails at the magic proves little).
    expect(outcomes.parsed).toBeGreaterThan(1000);
    expect(outcomes.rejected).toBeGreaterThan(3000);
    expect(outcomes.metadataOk).toBeGreaterThan(100);
  });
});
