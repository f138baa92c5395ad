// What a chat request's tools, tool_choice and response_format demand of the output, checked and
// turned into one grammar format (src/grammar/format.ts) before anything is queued:
//   response_format json_object / json_schema → one JSON value valid against the schema;
//   tool_choice required / a named function → only calls (of the listed functions, arguments valid
//     against their `parameters`), then the end;
//   auto → free text, but from the moment the model opens a call tag, a valid call (a lazy grammar);
//   none → no call: the call tag's token is banned.
// With Qwen3 thinking on, the grammar starts after </think>: the reasoning itself is free.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { Ajv } from 'ajv';
import type { GrammarFormat, TagFormat } from '../grammar/format.js';
import { QWEN3_REASONING_TAGS, type ReasoningStart, type ReasoningTags } from '../tokenizer/reasoning.js';
import { QWEN3_TOOL_CALLS, type ToolCallSyntax } from '../tokenizer/tool-calls.js';
import { RequestError } from './engine.js';
import type { ChatMessage, JsonSchema, ResponseFormat, Tool, ToolChoice } from './types.js';

export interface OutputOptions {
  tools?: readonly Tool[];
  /** Default: 'auto' with tools, 'none' without. */
  toolChoice?: ToolChoice;
  /** More than one call per answer (default true). */
  parallelToolCalls?: boolean;
  responseFormat?: ResponseFormat;
}

/** The enforcement a request needs, ready for the grammar pool. */
export interface OutputPlan {
  /** null: nothing to enforce. */
  format: GrammarFormat | null;
  /** Text whose token must never be sampled ('none': the call tag). */
  banned: string | null;
  /** Parse tool calls out of the answer. */
  parseToolCalls: boolean;
  /** Per schema in the format: the request field it came from, for error messages. */
  sources: { param: string; what: string; schema: JsonSchema }[];
}

const ajv2020 = new Ajv2020({ strict: false, validateFormats: false });
const ajv07 = new Ajv({ strict: false, validateFormats: false });

/** Throws RequestError(param) unless `schema` is a JSON Schema. */
export function checkJsonSchema(schema: unknown, param: string, what: string): asserts schema is JsonSchema {
  if (typeof schema === 'boolean') return;
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) throw new RequestError(`${what} must be a JSON Schema object`, param);
  const declared = (schema as { $schema?: unknown }).$schema;
  const ajv = typeof declared === 'string' && /draft-0[467]/.test(declared) ? ajv07 : ajv2020;
  let valid: boolean;
  try {
    valid = ajv.validateSchema(schema) as boolean;
  } catch (error) {
    throw new RequestError(`${what} is not a usable JSON Schema: ${error instanceof Error ? error.message : String(error)}`, param);
  }
  if (!valid) {
    const e = ajv.errors?.[0];
    throw new RequestError(`${what} is not a valid JSON Schema: ${e ? `${e.instancePath || '/'} ${e.message}` : 'rejected by the meta-schema'}`, param);
  }
}

/** Checks tools, tool_choice and response_format (names, schemas) and plans their enforcement. */
export function planOutput(
  options: OutputOptions,
  start: ReasoningStart,
  syntax: ToolCallSyntax = QWEN3_TOOL_CALLS,
  tags: ReasoningTags = QWEN3_REASONING_TAGS,
): OutputPlan {
  const tools = options.tools ?? [];
  const sources: OutputPlan['sources'] = [];
  const names = new Set<string>();
  tools.forEach((tool, i) => {
    const name = tool.function?.name;
    if (tool.type !== 'function') throw new RequestError(`tools[${i}]: only tools of type 'function' are supported`, `tools[${i}].type`);
    if (typeof name !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(name))
      throw new RequestError(`tools[${i}].function.name must be 1 to 64 letters, digits, '_', '.' or '-'`, `tools[${i}].function.name`);
    if (names.has(name)) throw new RequestError(`tools[${i}]: the function name '${name}' is used twice`, `tools[${i}].function.name`);
    names.add(name);
    if (tool.function.parameters !== undefined) checkJsonSchema(tool.function.parameters, `tools[${i}].function.parameters`, `the parameters of tool '${name}'`);
  });

  const choice = options.toolChoice ?? (tools.length > 0 ? 'auto' : 'none');
  let callable: readonly Tool[] = tools;
  if (typeof choice === 'object') {
    const wanted = choice.function?.name;
    const tool = tools.find((t) => t.function.name === wanted);
    if (tool === undefined)
      throw new RequestError(
        tools.length === 0 ? `tool_choice names the function '${wanted}' but the request has no tools` : `tool_choice names the function '${wanted}', which is not in tools`,
        'tool_choice',
      );
    callable = [tool];
  } else if (choice === 'required' && tools.length === 0) {
    throw new RequestError("tool_choice 'required' needs at least one tool", 'tool_choice');
  }

  let json: GrammarFormat | null = null;
  const format = options.responseFormat;
  if (format?.type === 'json_object') {
    json = { type: 'json_schema', json_schema: { type: 'object' } };
    sources.push({ param: 'response_format', what: 'response_format', schema: { type: 'object' } });
  } else if (format?.type === 'json_schema') {
    const schema = format.json_schema.schema ?? { type: 'object' };
    checkJsonSchema(schema, 'response_format.json_schema.schema', `the schema of response_format '${format.json_schema.name}'`);
    json = { type: 'json_schema', json_schema: schema };
    sources.push({ param: 'response_format', what: `the schema of response_format '${format.json_schema.name}'`, schema });
  }

  const calls = choice === 'none' ? [] : callable;
  for (const t of calls) {
    const i = tools.indexOf(t);
    sources.push({ param: `tools[${i}].function.parameters`, what: `the parameters of tool '${t.function.name}'`, schema: parameters(t) });
  }
  const tagFormats = calls.map((t) => callTag(t, syntax));
  const parallel = options.parallelToolCalls ?? true;
  let answer: GrammarFormat | null = json;
  if (choice === 'required' || typeof choice === 'object') {
    answer = { type: 'tags_with_separator', tags: tagFormats, separator: syntax.separator, at_least_one: true, stop_after_first: !parallel };
  } else if (choice === 'auto' && tagFormats.length > 0) {
    const lazy: GrammarFormat = { type: 'triggered_tags', triggers: [syntax.open], tags: tagFormats, stop_after_first: !parallel };
    answer = json === null ? lazy : { type: 'or', elements: [{ type: 'tags_with_separator', tags: tagFormats, separator: syntax.separator, at_least_one: true, stop_after_first: !parallel }, json] };
  }
  return {
    format: answer === null ? null : afterReasoning(answer, start, tags),
    banned: choice === 'none' && tools.length > 0 ? syntax.open : null,
    parseToolCalls: calls.length > 0,
    sources,
  };
}

function parameters(tool: Tool): JsonSchema {
  return tool.function.parameters ?? { type: 'object', properties: {} };
}

function callTag(tool: Tool, syntax: ToolCallSyntax): TagFormat {
  return { type: 'tag', begin: syntax.header(tool.function.name), content: { type: 'json_schema', json_schema: parameters(tool) }, end: syntax.footer };
}

/** The answer's grammar behind the reasoning block, when the output may open with one. */
function afterReasoning(answer: GrammarFormat, start: ReasoningStart, tags: ReasoningTags): GrammarFormat {
  if (start === 'content') return answer;
  const reasoning: TagFormat = { type: 'tag', begin: start === 'detect' ? tags.open : '', content: { type: 'any_text' }, end: tags.close };
  return { type: 'sequence', elements: [reasoning, { type: 'const_string', value: '\n\n' }, answer] };
}

/** Every `tool` message must answer a call an earlier assistant message made (by id). */
export function checkToolMessages(messages: readonly ChatMessage[]): void {
  const calls = new Set<string>();
  messages.forEach((m, i) => {
    if (m.role === 'assistant') for (const c of m.tool_calls ?? []) calls.add(c.id);
    if (m.role === 'tool' && !calls.has(m.tool_call_id))
      throw new RequestError(`messages[${i}]: tool_call_id '${m.tool_call_id}' answers no tool call of an earlier assistant message`, `messages[${i}].tool_call_id`);
  });
}
