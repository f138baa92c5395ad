// The sample op's params row has one layout, native/ops.h's PARALON_SAMPLING_FIELDS: the addon exports
// it and src/runtime/ops.ts checks its own copy against it when it loads. This test keeps the two
// from drifting (and the check from going silent).
import { describe, expect, it } from 'vitest';
import { ops } from '../../src/runtime/index.js';
import { addon } from '../../src/runtime/native.js';

describe('sample params layout', () => {
  it('the addon reads params rows in the order ops.ts writes them', () => {
    expect(addon.sampleParamFields).toEqual([...ops.SAMPLE_PARAM_FIELDS]);
  });

  it('a differing layout is refused, naming both lists', () => {
    const swapped = [...ops.SAMPLE_PARAM_FIELDS];
    [swapped[1], swapped[2]] = [swapped[2], swapped[1]];
    expect(() => ops.checkSampleParamLayout(swapped)).toThrow(
      /the native addon's sampling parameters \(temperature, topP, topK, .*\) differ from src\/runtime\/ops.ts's \(temperature, topK, topP, /,
    );
    expect(() => ops.checkSampleParamLayout(ops.SAMPLE_PARAM_FIELDS.slice(0, -1))).toThrow(/rebuild the addon/);
  });
});
