// The request types are derived from the route schemas (json-schema-to-ts's FromSchema). These
// compile-time checks (run by `npm run typecheck`) make sure the derivation stays precise: a schema
// construct FromSchema cannot read would turn a field into `unknown` or `any` without any error.
import { expect, it } from 'vitest';
import type { ChatCompletionRequest } from '../../src/server/schemas/chat.js';
import type { SamplingFields } from '../../src/server/schemas/common.js';
import type { CompletionRequest } from '../../src/server/schemas/completions.js';
import type { ResponseInputItem, ResponseRequest } from '../../src/server/schemas/responses.js';

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Role = ChatCompletionRequest['messages'][number]['role'];
type Content = ChatCompletionRequest['messages'][number]['content'];

const checks = {
  model: true satisfies Same<SamplingFields['model'], string>,
  temperature: true satisfies Same<SamplingFields['temperature'], number | null | undefined>,
  stop: true satisfies Same<SamplingFields['stop'], string | string[] | null | undefined>,
  logitBias: true satisfies Same<SamplingFields['logit_bias'], { [id: string]: number } | null | undefined>,
  role: true satisfies Same<Role, 'developer' | 'system' | 'user' | 'assistant' | 'tool'>,
  content: true satisfies Same<Content, string | { type: 'text'; text: string }[] | null | undefined>,
  prompt: true satisfies Same<CompletionRequest['prompt'], string | string[] | number[] | number[][]>,
  stopTokenIds: true satisfies Same<SamplingFields['stop_token_ids'], number[] | null | undefined>,
  itemType: true satisfies Same<ResponseInputItem['type'], 'message' | 'function_call' | 'function_call_output' | 'reasoning' | undefined>,
  toolChoice: true satisfies Same<ResponseRequest['tool_choice'], 'none' | 'auto' | 'required' | { type: 'function'; name: string } | null | undefined>,
  // Not `any`: a wrong type must be told apart.
  notAny: false satisfies Same<SamplingFields['temperature'], string>,
  roleNotString: false satisfies Same<Role, string>,
};

it('request types derived from the schemas are precise (checked at compile time)', () => {
  expect(Object.values(checks).filter((v) => v === true)).toHaveLength(10);
});
