// One terminal chat turn: Qwen3's <think> block split from the answer wherever the deltas cut the tags,
// usage and speed reported, and a stop (AbortSignal) passed through to the generation.
import { describe, expect, it } from 'vitest';
import { chatTurn } from '../../src/cli/turn.js';
import type { Model } from '../../src/engine/model.js';
import type { GenerationEvent } from '../../src/engine/types.js';

/** A stand-in Model: renders a fixed prompt and streams the given deltas, one token each. */
function stubModel(prompt: string, deltas: string[], seen: { signal?: AbortSignal } = {}): Model {
  return {
    tokenizer: { encodeChat: () => ({ prompt, ids: [1, 2, 3] }) },
    async *generate(_ids: number[], _sampling: unknown, call: { signal?: AbortSignal }): AsyncGenerator<GenerationEvent> {
      seen.signal = call.signal;
      for (const text of deltas) yield { type: 'delta', text, tokenIds: [7] };
      yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 3, completionTokens: deltas.length, totalTokens: 3 + deltas.length } };
    },
  } as unknown as Model;
}

describe('chatTurn', () => {
  it('separates the reasoning from the answer across cut tags', async () => {
    const shown: [string, string][] = [];
    const seen: { signal?: AbortSignal } = {};
    const abort = new AbortController();
    const model = stubModel('<|im_start|>assistant\n', ['<th', 'ink>\nLet me', ' see.\n</thi', 'nk>\n\nFour', '.'], seen);
    const r = await chatTurn(model, [{ role: 'user', content: '2+2?' }], { sampling: {}, enableThinking: true, signal: abort.signal, onDelta: (d) => shown.push([d.reasoning, d.content]) });
    expect(r).toMatchObject({ reasoning: 'Let me see.', content: 'Four.', finishReason: 'stop', usage: { completionTokens: 5 } });
    expect(shown.map(([a]) => a).join('')).toBe('Let me see.');
    expect(shown.map(([, b]) => b).join('')).toBe('Four.');
    expect(seen.signal).toBe(abort.signal);
    expect(r.tokensPerSecond).toBeGreaterThanOrEqual(0);
  });

  it('treats everything as the answer when the prompt closed the think block (/nothink)', async () => {
    const r = await chatTurn(stubModel('<|im_start|>assistant\n<think>\n\n</think>\n\n', ['Four', '.']), [], { sampling: {}, enableThinking: false, onDelta: () => {} });
    expect(r).toMatchObject({ reasoning: '', content: 'Four.' });
  });
});
