// The request settings panel: which form field is which request field, reading and checking what the
// user typed, and building the chat request body. A blank field is left out of the request, so the
// server applies the model's own default (Qwen3's generation_config.json for the sampling fields).

/**
 * One numeric field. The input's id is the request field's name; `integer` fields reject fractions.
 * @typedef {{ name: string, label: string, integer: boolean, min: number, max: number, minExclusive?: boolean }} NumberField
 * @type {NumberField[]}
 */
export const NUMBER_FIELDS = [
  { name: 'temperature', label: 'Temperature', integer: false, min: 0, max: 2 },
  { name: 'top_p', label: 'Top p', integer: false, min: 0, max: 1, minExclusive: true },
  { name: 'top_k', label: 'Top k', integer: true, min: -1, max: 1_000_000 },
  { name: 'max_tokens', label: 'Max tokens', integer: true, min: 1, max: 1_000_000_000 },
  { name: 'seed', label: 'Seed', integer: true, min: 0, max: Number.MAX_SAFE_INTEGER },
];

/** The server accepts at most this many stop sequences (as OpenAI's API does). */
const MAX_STOPS = 16;

/**
 * The settings as typed (strings, and the thinking switch), the form the page stores and restores.
 * @typedef {{ model: string, thinking: boolean, stop: string } & Record<string, string | boolean>} RawSettings
 */

/** Reads the form into RawSettings. */
export function readRawSettings(form) {
  const raw = { model: form.elements.model.value, thinking: form.elements.thinking.checked, stop: form.elements.stop.value };
  for (const field of NUMBER_FIELDS) raw[field.name] = form.elements[field.name].value.trim();
  return raw;
}

/** Puts stored RawSettings back into the form (the model is chosen once the model list arrives). */
export function writeRawSettings(form, raw) {
  if (typeof raw.thinking === 'boolean') form.elements.thinking.checked = raw.thinking;
  if (typeof raw.stop === 'string') form.elements.stop.value = raw.stop;
  for (const field of NUMBER_FIELDS) if (typeof raw[field.name] === 'string') form.elements[field.name].value = raw[field.name];
}

/**
 * The request fields the settings ask for, or the first problem (with the field to focus).
 * @returns {{ fields: Record<string, unknown> } | { error: string, field: string }}
 */
export function parseSettings(raw) {
  const fields = {};
  for (const field of NUMBER_FIELDS) {
    const text = raw[field.name];
    if (text === '') continue;
    const value = Number(text);
    const belowMin = field.minExclusive ? value <= field.min : value < field.min;
    if (!Number.isFinite(value) || (field.integer && !Number.isInteger(value)) || belowMin || value > field.max) {
      const kind = field.integer ? 'a whole number' : 'a number';
      const low = field.minExclusive ? `above ${field.min}` : `from ${field.min}`;
      return { error: `${field.label} must be ${kind} ${low} to ${field.max}, or blank for the model's default.`, field: field.name };
    }
    fields[field.name] = value;
  }
  const stops = parseStops(raw.stop);
  if (stops.length > MAX_STOPS) return { error: `At most ${MAX_STOPS} stop sequences are allowed.`, field: 'stop' };
  if (stops.length > 0) fields.stop = stops;
  fields.chat_template_kwargs = { enable_thinking: raw.thinking };
  return { fields };
}

/**
 * One stop sequence per line; "\n" and "\t" stand for a newline and a tab, "\\" for a backslash.
 * Spaces are kept (" User:" and "User:" are different stops); empty lines are skipped.
 */
export function parseStops(text) {
  return text
    .split(/\r?\n/)
    .filter((line) => line !== '')
    .map((line) => line.replace(/\\([nt\\])/g, (_, c) => (c === 'n' ? '\n' : c === 't' ? '\t' : '\\')));
}

/**
 * The chat request (without the streaming fields) for the model, the settings' fields, the system
 * prompt and the conversation. Only role and content are sent: Qwen3's chat template drops the
 * reasoning of earlier turns anyway.
 */
export function chatRequest(model, fields, system, messages) {
  const all = [];
  if (system.trim() !== '') all.push({ role: 'system', content: system });
  for (const m of messages) all.push({ role: m.role, content: m.content });
  return { model, messages: all, ...fields };
}
