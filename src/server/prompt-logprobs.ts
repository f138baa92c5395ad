// Prompt logprobs on the HTTP side: vLLM's `prompt_logprobs` request extra (chat and text completions)
// and its response shape, a list with null first and then, per prompt token, { token id: { logprob,
// rank, decoded_token } } holding the prompt token and its top alternatives. (/v1/completions' echo
// with logprobs puts the same numbers in the legacy parallel arrays: CompletionLogprobsBuilder.appendPrompt.)
import { MAX_PROMPT_LOGPROBS } from '../engine/prompt-logprobs.js';
import type { PromptLogprobsList } from '../engine/types.js';
import { badRequest } from './errors.js';
import { finiteLogprob } from './logprobs.js';

export interface VllmLogprob {
  logprob: number;
  rank: number;
  decoded_token: string;
}

export type VllmPromptLogprobs = (Record<string, VllmLogprob> | null)[];

/** The request field, shared by the chat and text completion schemas. */
export const promptLogprobsProperty = { type: ['integer', 'null'], minimum: 0, maximum: MAX_PROMPT_LOGPROBS } as const;

/** The response field (per choice on /v1/completions, on the response on /v1/chat/completions, as vLLM puts them). */
export const promptLogprobsResponseSchema = {
  anyOf: [
    {
      type: 'array',
      items: {
        anyOf: [
          { type: 'null' },
          {
            type: 'object',
            additionalProperties: {
              type: 'object',
              required: ['logprob', 'rank', 'decoded_token'],
              properties: { logprob: { type: 'number' }, rank: { type: 'integer' }, decoded_token: { type: 'string' } },
            },
          },
        ],
      },
    },
    { type: 'null' },
  ],
} as const;

/** vLLM refuses prompt_logprobs on a stream; so does this server (they would come before any text). */
export function checkPromptLogprobsRequest(body: { prompt_logprobs?: number | null; stream?: boolean | null }): void {
  if (body.prompt_logprobs !== null && body.prompt_logprobs !== undefined && body.stream)
    throw badRequest("'prompt_logprobs' is not available when 'stream' is true", 'prompt_logprobs');
}

/** vLLM's shape, with `numTop` alternatives per token (the engine may have computed more for echo). */
export function vllmPromptLogprobs(list: PromptLogprobsList, numTop: number): VllmPromptLogprobs {
  return list.map((lp) => {
    if (lp === null) return null;
    // No prototype: keys are token ids, but the object is built from engine data all the same.
    const out: Record<string, VllmLogprob> = Object.create(null);
    out[lp.tokenId] = { logprob: finiteLogprob(lp.logprob), rank: lp.rank ?? 1, decoded_token: lp.token };
    lp.top.slice(0, numTop).forEach((t, j) => {
      if (!(t.tokenId in out)) out[t.tokenId] = { logprob: finiteLogprob(t.logprob), rank: j + 1, decoded_token: t.token };
    });
    return out;
  });
}
