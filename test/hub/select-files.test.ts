// Model ids, file selection, the cache location and the progress display, without a network.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createProgressBar, formatBytes, formatDuration, hubCacheDir, parseHubId } from '../../src/hub/index.js';
import { quantOf, selectFiles, shardsOfIndex } from '../../src/hub/select-files.js';

describe('hub ids', () => {
  it('parses owner/name and owner/name:QUANT, and refuses what is not one', () => {
    expect(parseHubId('Qwen/Qwen3-8B')).toEqual({ repo: 'Qwen/Qwen3-8B', quant: undefined });
    expect(parseHubId('Qwen/Qwen3-8B-GGUF:Q4_K_M')).toEqual({ repo: 'Qwen/Qwen3-8B-GGUF', quant: 'Q4_K_M' });
    expect(parseHubId('unsloth/Qwen3-0.6B-GGUF:UD-Q4_K_XL')).toEqual({ repo: 'unsloth/Qwen3-0.6B-GGUF', quant: 'UD-Q4_K_XL' });
    for (const bad of ['qwen3', 'a/b/c', '/abs/path', 'Qwen/', 'Qwen/a--b', 'Qwen/..', 'Qwen/x:', 'Qwen/x y']) expect(parseHubId(bad), bad).toBeNull();
  });
});

describe('file selection', () => {
  const base = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.json', 'merges.txt', 'README.md', 'LICENSE'];

  it('takes the metadata and the weights, never the rest', () => {
    expect(selectFiles('o/m', [...base, 'model.safetensors', 'pytorch_model.bin'])).toEqual({
      format: 'safetensors',
      files: ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'model.safetensors'],
      entry: '',
      indexed: false,
    });
    const indexed = selectFiles('o/m', [...base, 'model.safetensors.index.json', 'model-00001-of-00002.safetensors', 'chat_template.jinja', 'modules.json', '1_Pooling/config.json']);
    expect(indexed.indexed).toBe(true);
    expect(indexed.files).toEqual(['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'modules.json', '1_Pooling/config.json', 'model.safetensors.index.json']);
  });

  it('reads the shards from the index and refuses names that are not plain .safetensors files', () => {
    const index = (map: Record<string, string>) => JSON.stringify({ weight_map: map });
    expect(shardsOfIndex(index({ a: 'model-2.safetensors', b: 'model-1.safetensors', c: 'model-2.safetensors' }), 'i')).toEqual(['model-1.safetensors', 'model-2.safetensors']);
    expect(() => shardsOfIndex(index({ a: '../../etc/passwd.safetensors' }), 'i')).toThrow("i: weight_map names '../../etc/passwd.safetensors', not a .safetensors file name");
    expect(() => shardsOfIndex('{', 'i')).toThrow(/^i: not JSON/);
    expect(() => shardsOfIndex('{}', 'i')).toThrow('i: weight_map is missing');
  });

  it('says what is missing or unusable', () => {
    expect(() => selectFiles('o/m', ['model.safetensors', 'config.json'])).toThrow('o/m lacks tokenizer.json, tokenizer_config.json, which Paralon needs next to the weights');
    expect(() => selectFiles('o/m', ['README.md', 'pytorch_model.bin'])).toThrow('o/m has neither model.safetensors, model.safetensors.index.json nor .gguf files, so Paralon cannot load it (its files: README.md, pytorch_model.bin)');
    expect(() => selectFiles('o/m', [...base, 'model.safetensors'], 'Q4_K_M')).toThrow("o/m has no .gguf files, so the tag ':Q4_K_M' picks nothing");
  });

  it('reads quant tags from GGUF names as llama.cpp does, case-insensitively', () => {
    expect(quantOf('Qwen3-8B-Q4_K_M.gguf')).toBe('Q4_K_M');
    expect(quantOf('sub/qwen3-8b-iq2_xxs.gguf')).toBe('IQ2_XXS');
    expect(quantOf('Qwen3-8B-BF16-00001-of-00003.gguf')).toBe('BF16');
    expect(quantOf('model.gguf')).toBeNull();
    const files = ['a-Q8_0.gguf', 'a-q4_k_m.gguf', 'mmproj-a-F16.gguf'];
    expect(selectFiles('o/g', files, 'q8_0').files).toEqual(['a-Q8_0.gguf']);
    expect(selectFiles('o/g', files).files).toEqual(['a-q4_k_m.gguf']);
    expect(selectFiles('o/g', ['x-Q8_0.gguf', 'x-Q6_K.gguf']).files).toEqual(['x-Q6_K.gguf']); // no Q4_K_M: the first
    expect(() => selectFiles('o/g', ['x-BF16-00001-of-00002.gguf'], 'BF16')).toThrow('is part of 2 files but the repository has 1 of them');
  });
});

describe('the cache location', () => {
  it('follows HF_HUB_CACHE, then HF_HOME, then XDG_CACHE_HOME, as huggingface_hub does', () => {
    expect(hubCacheDir({ HF_HUB_CACHE: '/c', HF_HOME: '/h' })).toBe('/c');
    expect(hubCacheDir({ HF_HOME: '/h' })).toBe(path.join('/h', 'hub'));
    expect(hubCacheDir({ XDG_CACHE_HOME: '/x' })).toBe(path.join('/x', 'huggingface', 'hub'));
  });
});

describe('progress', () => {
  const sink = (isTTY: boolean) => {
    const writes: string[] = [];
    return { writes, stream: Object.assign({ write: (s: string) => writes.push(s) !== 0, isTTY, columns: 120 }) as unknown as NodeJS.WritableStream & { isTTY: boolean } };
  };

  it('redraws one line with a bar, bytes, rate and ETA on a terminal', () => {
    let now = 0;
    const { writes, stream } = sink(true);
    const bar = createProgressBar('downloading o/m', { stream, now: () => now });
    now = 2000;
    bar.update(100 * 2 ** 20, 400 * 2 ** 20);
    now = 2050;
    bar.update(101 * 2 ** 20, 400 * 2 ** 20); // within 100 ms: not drawn
    now = 8000;
    bar.update(400 * 2 ** 20, 400 * 2 ** 20);
    bar.finish();
    expect(writes[0]).toBe(`\r\x1b[2Kdownloading o/m [${'█'.repeat(8)}${'░'.repeat(22)}] 100 MiB / 400 MiB  50.0 MiB/s  ETA 6.0s`); // 30 cells at 120 columns
    expect(writes).toHaveLength(3);
    expect(writes[2]).toMatch(/^\r\x1b\[2Kdownloading o\/m \[█{30}\] 400 MiB \/ 400 MiB  50.0 MiB\/s  in 8\.0s\n$/);
  });

  it('prints a plain line every few seconds elsewhere', () => {
    let now = 0;
    const { writes, stream } = sink(false);
    const bar = createProgressBar('downloading o/m', { stream, now: () => now, lineIntervalS: 5 });
    for (let t = 1000; t <= 12_000; t += 1000) {
      now = t;
      bar.update(t * 1024, 12_000 * 1024);
    }
    bar.finish();
    expect(writes).toEqual([
      'downloading o/m: 42% (4.88 MiB / 11.7 MiB, 1000 KiB/s, ETA 7.0s)\n',
      'downloading o/m: 83% (9.77 MiB / 11.7 MiB, 1000 KiB/s, ETA 2.0s)\n',
      'downloading o/m: 100% (11.7 MiB / 11.7 MiB, 1000 KiB/s, in 12s)\n',
    ]);
  });

  it('formats sizes and durations for people', () => {
    expect([0, 1023, 1024, 1536 * 1024, 5 * 2 ** 30].map(formatBytes)).toEqual(['0 B', '1023 B', '1.00 KiB', '1.50 MiB', '5.00 GiB']);
    expect([0.25, 42, 125, 7325].map(formatDuration)).toEqual(['0.3s', '42s', '2m05s', '2h02m']);
  });
});
