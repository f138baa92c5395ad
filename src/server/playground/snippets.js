// "Copy as code": one chat request as a curl command, a Python (openai) script and a Node (openai)
// module that run unchanged against this server. The key is never written into a snippet: each reads
// it from the PARALON_API_KEY environment variable.
//
// Fields outside OpenAI's own API (vLLM's top_k, chat_template_kwargs, …) travel in Python's
// `extra_body`, because the Python client rejects unknown keyword arguments; the Node client sends
// unknown fields as they are, so there they stay plain fields.

export const KEY_VARIABLE = 'PARALON_API_KEY';

/** Request fields the Python client accepts as keyword arguments of chat.completions.create. */
const OPENAI_FIELDS = new Set([
  'model', 'messages', 'temperature', 'top_p', 'max_tokens', 'max_completion_tokens', 'stop', 'seed', 'n',
  'presence_penalty', 'frequency_penalty', 'logprobs', 'top_logprobs', 'stream', 'stream_options', 'user',
]);

/**
 * @param {string} baseURL e.g. "http://127.0.0.1:8000/v1"
 * @param {Record<string, unknown>} body the request body (non-streaming)
 * @returns {{ curl: string, python: string, node: string }}
 */
export function codeSnippets(baseURL, body) {
  return { curl: curlSnippet(baseURL, body), python: pythonSnippet(baseURL, body), node: nodeSnippet(baseURL, body) };
}

function curlSnippet(baseURL, body) {
  return [
    `curl ${shellQuote(baseURL + '/chat/completions')} \\`,
    `  -H 'Content-Type: application/json' \\`,
    `  -H "Authorization: Bearer $${KEY_VARIABLE}" \\`,
    `  -d ${shellQuote(JSON.stringify(body, null, 2))}`,
    '',
  ].join('\n');
}

function pythonSnippet(baseURL, body) {
  const args = [];
  const extra = {};
  for (const [name, value] of Object.entries(body)) {
    if (OPENAI_FIELDS.has(name)) args.push(`    ${name}=${pythonLiteral(value, '    ')},`);
    else extra[name] = value;
  }
  if (Object.keys(extra).length > 0) args.push(`    extra_body=${pythonLiteral(extra, '    ')},`);
  return [
    'import os',
    '',
    'from openai import OpenAI',
    '',
    `client = OpenAI(base_url=${pythonLiteral(baseURL, '')}, api_key=os.environ.get(${pythonLiteral(KEY_VARIABLE, '')}, "none"))`,
    '',
    'completion = client.chat.completions.create(',
    ...args,
    ')',
    'message = completion.choices[0].message',
    'reasoning = getattr(message, "reasoning_content", None)',
    'if reasoning:',
    '    print("[reasoning]", reasoning)',
    'print(message.content)',
    '',
  ].join('\n');
}

function nodeSnippet(baseURL, body) {
  return [
    '// An ES module (save as chat.mjs): npm install openai && node chat.mjs',
    "import OpenAI from 'openai';",
    '',
    `const client = new OpenAI({ baseURL: ${JSON.stringify(baseURL)}, apiKey: process.env.${KEY_VARIABLE} ?? 'none' });`,
    '',
    `const completion = await client.chat.completions.create(${JSON.stringify(body, null, 2)});`,
    'const message = completion.choices[0].message;',
    "if (message.reasoning_content) console.log('[reasoning]', message.reasoning_content);",
    'console.log(message.content);',
    '',
  ].join('\n');
}

/** A POSIX shell single-quoted word: nothing inside is expanded; a ' becomes '\''. */
function shellQuote(text) {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

/**
 * A JSON value as a Python literal. JSON's string escapes are all valid in Python string literals
 * (JSON.stringify never emits "\/"), so strings keep JSON's spelling; true/false/null change names.
 */
function pythonLiteral(value, indent) {
  if (value === null || value === undefined) return 'None';
  if (value === true) return 'True';
  if (value === false) return 'False';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : 'None';
  if (typeof value === 'string') return JSON.stringify(value);
  const inner = indent + '    ';
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every((v) => typeof v !== 'object' || v === null)) return `[${value.map((v) => pythonLiteral(v, inner)).join(', ')}]`;
    return `[\n${value.map((v) => `${inner}${pythonLiteral(v, inner)},`).join('\n')}\n${indent}]`;
  }
  const entries = Object.entries(value);
  if (entries.length === 0) return '{}';
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${pythonLiteral(v, inner)}`).join(', ')}}`;
}
