// Talking to the OpenAI-compatible API from the page: GET /v1/models and a streamed
// POST /v1/chat/completions read as Server-Sent Events. Failures become a PlaygroundError whose `kind`
// the page turns into a message: 'auth' (401), 'busy' (429), 'network' (no answer), 'api' (any other
// error object, also one sent inside the stream), 'aborted' (the user pressed Stop).

export class PlaygroundError extends Error {
  /**
   * @param {'auth' | 'busy' | 'network' | 'api' | 'aborted'} kind
   * @param {string} message
   * @param {number | null} status
   */
  constructor(kind, message, status = null) {
    super(message);
    this.name = 'PlaygroundError';
    this.kind = kind;
    this.status = status;
  }
}

function headers(apiKey, json) {
  const h = {};
  if (json) h['content-type'] = 'application/json';
  if (apiKey) h.authorization = `Bearer ${apiKey}`;
  return h;
}

async function request(url, init) {
  try {
    return await fetch(url, init);
  } catch (error) {
    if (init.signal?.aborted) throw new PlaygroundError('aborted', 'stopped');
    throw new PlaygroundError('network', error instanceof Error ? error.message : String(error));
  }
}

/** A non-2xx response as a PlaygroundError, with the server's own message when it sent one. */
async function responseError(response) {
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (typeof body?.error?.message === 'string') message = body.error.message;
  } catch {
    // not JSON (a proxy's error page): the status line says enough
  }
  const kind = response.status === 401 ? 'auth' : response.status === 429 ? 'busy' : 'api';
  return new PlaygroundError(kind, message, response.status);
}

/** @returns {Promise<{ id: string, max_model_len?: number }[]>} */
export async function listModels(baseURL, apiKey) {
  const response = await request(`${baseURL}/models`, { headers: headers(apiKey, false) });
  if (!response.ok) throw await responseError(response);
  const body = await response.json();
  return Array.isArray(body?.data) ? body.data : [];
}

/**
 * Streams one chat completion. `onDelta({ content, reasoning })` runs for every chunk that carries
 * text; the promise resolves when the server sends [DONE].
 * @returns {Promise<{ finishReason: string | null, usage: { prompt_tokens: number, completion_tokens: number } | null }>}
 */
export async function streamChat({ baseURL, apiKey, body, signal, onDelta }) {
  const init = {
    method: 'POST',
    headers: headers(apiKey, true),
    body: JSON.stringify({ ...body, stream: true, stream_options: { include_usage: true } }),
    signal,
  };
  const response = await request(`${baseURL}/chat/completions`, init);
  if (!response.ok) throw await responseError(response);
  if (!response.body) throw new PlaygroundError('api', 'the response has no body');

  const result = { finishReason: null, usage: null };
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new PlaygroundError('network', 'the connection closed before the answer was complete');
      buffer += value;
      // Events end with a blank line; a chunk may hold several events or part of one.
      let end;
      while ((end = eventEnd(buffer)) !== null) {
        const data = eventData(buffer.slice(0, end.index));
        buffer = buffer.slice(end.index + end.length);
        if (data === null) continue;
        if (data === '[DONE]') return result;
        handleEvent(parseEvent(data), result, onDelta);
      }
    }
  } catch (error) {
    if (signal?.aborted) throw new PlaygroundError('aborted', 'stopped');
    if (error instanceof PlaygroundError) throw error;
    throw new PlaygroundError('network', error instanceof Error ? error.message : String(error));
  } finally {
    reader.releaseLock();
  }
}

function eventEnd(buffer) {
  const match = /\r?\n\r?\n/.exec(buffer);
  return match ? { index: match.index, length: match[0].length } : null;
}

/** The joined `data:` lines of one event, or null for an event without data (a comment, a keep-alive). */
function eventData(event) {
  const lines = event.split(/\r?\n/).filter((line) => line.startsWith('data:'));
  if (lines.length === 0) return null;
  return lines.map((line) => line.slice(line.startsWith('data: ') ? 6 : 5)).join('\n');
}

function parseEvent(data) {
  try {
    return JSON.parse(data);
  } catch {
    throw new PlaygroundError('api', `the server sent an event that is not JSON: ${data.slice(0, 80)}`);
  }
}

function handleEvent(event, result, onDelta) {
  if (event.error) {
    const kind = event.error.code === 'rate_limit_exceeded' ? 'busy' : 'api';
    throw new PlaygroundError(kind, String(event.error.message ?? 'the server stopped the generation'));
  }
  if (event.usage) result.usage = event.usage;
  const choice = event.choices?.[0];
  if (!choice) return;
  const content = choice.delta?.content ?? '';
  const reasoning = choice.delta?.reasoning_content ?? '';
  if (content || reasoning) onDelta({ content, reasoning });
  if (choice.finish_reason) result.finishReason = choice.finish_reason;
}
