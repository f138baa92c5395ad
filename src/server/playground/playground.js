// The playground page: wires the settings, the conversation, streaming send/stop, the model list,
// error messages and the "Copy as code" dialog together. The API is this page's own origin; the key,
// the settings and the conversation are kept in localStorage so a reload loses nothing.
import { PlaygroundError, listModels, streamChat } from './chat-stream.js';
import { Conversation, autosize } from './conversation.js';
import { chatRequest, parseSettings, readRawSettings, writeRawSettings } from './settings.js';
import { codeSnippets } from './snippets.js';

const API_BASE = `${location.origin}/v1`;
/** The id `paralon serve` gives its built-in random-weight model. */
const DEMO_MODEL_ID = 'paralon-demo';
const STORAGE = { key: 'paralon.playground.apiKey', settings: 'paralon.playground.settings', conversation: 'paralon.playground.conversation' };
const MODEL_RETRY_MS = 2000;

const $ = (id) => document.getElementById(id);
const ui = {
  settingsPanel: $('settings-panel'),
  settings: /** @type {HTMLFormElement} */ ($('settings')),
  apiKey: $('api-key'),
  showKey: $('show-key'),
  model: $('model'),
  modelHint: $('model-hint'),
  modelStatus: $('model-status'),
  resetSettings: $('reset-settings'),
  system: $('system-prompt'),
  error: $('error'),
  composer: $('composer'),
  prompt: $('prompt'),
  addRole: $('add-role'),
  add: $('add'),
  clear: $('clear'),
  send: $('send'),
  stop: $('stop-generation'),
  runStatus: $('run-status'),
  openCode: $('open-code'),
  codeDialog: /** @type {HTMLDialogElement} */ ($('code-dialog')),
  closeCode: $('close-code'),
  codePanel: $('code-panel'),
  code: $('code'),
  copyCode: $('copy-code'),
  copyStatus: $('copy-status'),
  tabs: [...document.querySelectorAll('[role="tab"]')],
};

const conversation = new Conversation($('messages'), /** @type {HTMLTemplateElement} */ ($('message-template')), saveConversation);
/** The generation in flight: its AbortController, or null. */
let inFlight = null;
let preferredModel = '';
/** What GET /v1/models listed last, or why it failed. */
let servedModels = [];
let modelListError = null;
let modelRetry = 0;

// ---- storage (may be unavailable: private windows, disabled storage) ----

function load(name) {
  try {
    return JSON.parse(localStorage.getItem(name) ?? 'null');
  } catch {
    return null;
  }
}

function save(name, value) {
  try {
    localStorage.setItem(name, JSON.stringify(value));
  } catch {
    // storage full or disabled: the page still works, it only forgets on reload
  }
}

function saveSettings() {
  save(STORAGE.settings, readRawSettings(ui.settings));
}

function saveConversation() {
  save(STORAGE.conversation, { system: ui.system.value, messages: conversation.messages });
}

// ---- messages to the user ----

function showError(text) {
  ui.error.textContent = text;
  ui.error.hidden = false;
}

function hideError() {
  ui.error.hidden = true;
  ui.error.textContent = '';
  ui.apiKey.removeAttribute('aria-invalid');
}

/** What went wrong, in words that say what to do next. */
function describeError(error) {
  if (!(error instanceof PlaygroundError)) return `Unexpected error: ${error instanceof Error ? error.message : String(error)}`;
  const said = sentence(error.message);
  switch (error.kind) {
    case 'auth':
      return `The server rejected the API key (401): ${said} Enter a valid key under Settings → API key.`;
    case 'busy':
      return `The server is busy (429): ${said} Wait a moment and send again.`;
    case 'network':
      return `Network error: the server at ${location.origin} could not be reached (${error.message}). Check that it is running.`;
    default:
      return `The server answered with an error${error.status ? ` (${error.status})` : ''}: ${said}`;
  }
}

function sentence(text) {
  return /[.!?…]$/.test(text) ? text : `${text}.`;
}

function reportError(error) {
  showError(describeError(error));
  if (error instanceof PlaygroundError && error.kind === 'auth') {
    ui.apiKey.setAttribute('aria-invalid', 'true');
    ui.settingsPanel.open = true;
  }
}

// ---- the model list ----

async function refreshModels() {
  clearTimeout(modelRetry);
  ui.modelStatus.textContent = 'Loading the model list…';
  try {
    servedModels = await listModels(API_BASE, ui.apiKey.value.trim());
    modelListError = null;
    ui.model.replaceChildren(...servedModels.map((m) => new Option(m.id, m.id)));
    if (servedModels.some((m) => m.id === preferredModel)) ui.model.value = preferredModel;
    if (ui.apiKey.hasAttribute('aria-invalid')) hideError();
    describeModel();
  } catch (error) {
    servedModels = [];
    modelListError = error;
    ui.model.replaceChildren();
    describeModel();
    if (error instanceof PlaygroundError && error.status === 503) {
      // The model is still loading (or the server is draining): try again shortly.
      ui.modelStatus.textContent = sentence(error.message);
      modelRetry = setTimeout(refreshModels, MODEL_RETRY_MS);
      return;
    }
    ui.modelStatus.textContent = 'No model list: see the message below.';
    reportError(error);
  }
}

function describeModel() {
  const models = servedModels;
  const model = models.find((m) => m.id === ui.model.value);
  ui.modelStatus.classList.remove('demo');
  if (!model) {
    ui.modelHint.textContent = '';
    return;
  }
  const demo = model.id === DEMO_MODEL_ID;
  const context = typeof model.max_model_len === 'number' ? `, context ${model.max_model_len.toLocaleString('en')} tokens` : '';
  ui.modelStatus.textContent = `Serving ${model.id}${demo ? ' — the demo model: random weights, so its output is noise' : ''}`;
  ui.modelStatus.classList.toggle('demo', demo);
  ui.modelHint.textContent = `${models.length === 1 ? 'The one model this server serves' : `${models.length} models`}${context}.`;
}

// ---- sending ----

/** The request Send would make now, or null (after showing why not). */
function pendingRequest({ includePrompt }) {
  const parsed = parseSettings(readRawSettings(ui.settings));
  if ('error' in parsed) {
    showError(parsed.error);
    ui.settingsPanel.open = true;
    ui.settings.elements[parsed.field].focus();
    return null;
  }
  if (!ui.model.value) {
    if (modelListError) reportError(modelListError);
    else showError('There is no model to send to yet: the model list has not loaded.');
    return null;
  }
  const messages = conversation.messages;
  if (includePrompt && ui.prompt.value.trim() !== '') messages.push({ role: 'user', content: ui.prompt.value });
  return chatRequest(ui.model.value, parsed.fields, ui.system.value, messages);
}

async function send() {
  if (inFlight) return;
  hideError();
  if (pendingRequest({ includePrompt: true }) === null) return;
  if (ui.prompt.value.trim() !== '') {
    conversation.add('user', ui.prompt.value);
    ui.prompt.value = '';
    autosize(ui.prompt);
  }
  if (conversation.isEmpty) {
    showError('Write a message first.');
    return;
  }
  const body = pendingRequest({ includePrompt: false });
  const controller = new AbortController();
  inFlight = controller;
  setRunning(true);
  const reply = conversation.startAssistant();
  reply.item.scrollIntoView({ block: 'nearest' });
  const started = performance.now();
  let firstTokenAt = null;
  ui.runStatus.textContent = 'Waiting for the first token…';
  try {
    const result = await streamChat({
      baseURL: API_BASE,
      apiKey: ui.apiKey.value.trim(),
      body,
      signal: controller.signal,
      onDelta: (delta) => {
        if (firstTokenAt === null) {
          firstTokenAt = performance.now();
          ui.runStatus.textContent = 'Generating…';
        }
        const follow = nearBottom();
        reply.append(delta);
        if (follow) window.scrollTo({ top: document.documentElement.scrollHeight });
      },
    });
    const stats = formatStats(result, started, firstTokenAt, performance.now());
    reply.done(stats);
    ui.runStatus.textContent = `Done: ${stats}.`;
  } catch (error) {
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    if (error instanceof PlaygroundError && error.kind === 'aborted') {
      reply.done(`stopped after ${seconds} s`);
      ui.runStatus.textContent = `Stopped after ${seconds} s; closing the request cancels the generation on the server.`;
    } else {
      reply.done(`interrupted after ${seconds} s`);
      ui.runStatus.textContent = '';
      reportError(error);
    }
  } finally {
    inFlight = null;
    setRunning(false);
  }
}

function stop() {
  inFlight?.abort();
}

function setRunning(running) {
  ui.send.hidden = running;
  ui.stop.hidden = !running;
  ui.clear.disabled = running;
  if (running) ui.stop.focus();
  else if (document.activeElement === ui.stop || document.activeElement === document.body) ui.prompt.focus();
}

/** Usage and speed: decode rate over the tokens after the first (the first one's time is the TTFT). */
function formatStats({ usage, finishReason }, started, firstTokenAt, ended) {
  const parts = [];
  if (usage) parts.push(`${usage.prompt_tokens} prompt + ${usage.completion_tokens} completion tokens`);
  if (firstTokenAt !== null) {
    const decodeSeconds = (ended - firstTokenAt) / 1000;
    if (usage && usage.completion_tokens > 1 && decodeSeconds > 0)
      parts.push(`${((usage.completion_tokens - 1) / decodeSeconds).toFixed(1)} tok/s`);
    parts.push(`TTFT ${Math.round(firstTokenAt - started)} ms`);
  }
  if (finishReason) parts.push(finishReason === 'length' ? 'hit max tokens' : `finish: ${finishReason}`);
  return parts.join(' · ');
}

function nearBottom() {
  return window.innerHeight + window.scrollY >= document.documentElement.scrollHeight - 120;
}

// ---- copy as code ----

let snippets = { curl: '', python: '', node: '' };
let language = 'curl';

function openCode() {
  hideError();
  const body = pendingRequest({ includePrompt: true });
  if (body === null) return;
  snippets = codeSnippets(API_BASE, body);
  selectLanguage(language);
  ui.copyStatus.textContent = '';
  ui.codeDialog.showModal();
}

function selectLanguage(lang) {
  language = lang;
  for (const tab of ui.tabs) {
    const selected = tab.dataset.lang === lang;
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    if (selected) ui.codePanel.setAttribute('aria-labelledby', tab.id);
  }
  ui.code.textContent = snippets[lang];
  ui.code.dataset.lang = lang;
}

async function copyCode() {
  const text = snippets[language];
  try {
    // The async clipboard exists only in secure contexts (https, localhost).
    await navigator.clipboard.writeText(text);
    ui.copyStatus.textContent = 'Copied.';
  } catch {
    const range = document.createRange();
    range.selectNodeContents(ui.code);
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    ui.copyStatus.textContent = document.execCommand('copy') ? 'Copied.' : 'Selected: press Ctrl+C (⌘C) to copy.';
  }
}

// ---- wiring ----

function restore() {
  ui.apiKey.value = load(STORAGE.key) ?? '';
  const settings = load(STORAGE.settings);
  if (settings) {
    writeRawSettings(ui.settings, settings);
    preferredModel = typeof settings.model === 'string' ? settings.model : '';
  }
  const saved = load(STORAGE.conversation);
  if (saved) {
    ui.system.value = typeof saved.system === 'string' ? saved.system : '';
    if (Array.isArray(saved.messages))
      conversation.load(saved.messages.filter((m) => (m.role === 'user' || m.role === 'assistant') && typeof m.content === 'string'));
  }
  autosize(ui.system);
  // Phones: the settings start folded so the conversation is what one sees first.
  if (matchMedia('(max-width: 760px)').matches) ui.settingsPanel.open = false;
}

function wire() {
  ui.composer.addEventListener('submit', (event) => {
    event.preventDefault();
    send();
  });
  ui.stop.addEventListener('click', stop);
  document.addEventListener('keydown', (event) => {
    if (ui.codeDialog.open) return;
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      send();
    } else if (event.key === 'Escape' && inFlight) {
      event.preventDefault();
      stop();
    }
  });
  ui.add.addEventListener('click', () => {
    const item = conversation.add(ui.addRole.value, ui.prompt.value);
    ui.prompt.value = '';
    autosize(ui.prompt);
    item.querySelector('.content').focus();
  });
  ui.clear.addEventListener('click', () => {
    conversation.load([]);
    hideError();
    ui.runStatus.textContent = '';
  });
  ui.prompt.addEventListener('input', () => autosize(ui.prompt));
  ui.system.addEventListener('input', () => {
    autosize(ui.system);
    saveConversation();
  });

  ui.settings.addEventListener('input', saveSettings);
  ui.settings.addEventListener('change', saveSettings);
  ui.apiKey.addEventListener('input', () => save(STORAGE.key, ui.apiKey.value.trim()));
  ui.apiKey.addEventListener('change', refreshModels);
  ui.model.addEventListener('change', () => {
    preferredModel = ui.model.value;
    describeModel();
  });
  ui.showKey.addEventListener('click', () => {
    const show = ui.apiKey.type === 'password';
    ui.apiKey.type = show ? 'text' : 'password';
    ui.showKey.setAttribute('aria-pressed', String(show));
    ui.showKey.textContent = show ? 'Hide' : 'Show';
  });
  ui.resetSettings.addEventListener('click', () => {
    for (const input of ui.settings.querySelectorAll('input[type="number"], textarea')) input.value = '';
    ui.settings.elements.thinking.checked = true;
    saveSettings();
  });

  ui.openCode.addEventListener('click', openCode);
  ui.closeCode.addEventListener('click', () => ui.codeDialog.close());
  ui.copyCode.addEventListener('click', copyCode);
  for (const tab of ui.tabs) {
    tab.addEventListener('click', () => selectLanguage(tab.dataset.lang));
    tab.addEventListener('keydown', (event) => {
      const step = event.key === 'ArrowRight' ? 1 : event.key === 'ArrowLeft' ? -1 : 0;
      if (step === 0) return;
      const next = ui.tabs[(ui.tabs.indexOf(tab) + step + ui.tabs.length) % ui.tabs.length];
      selectLanguage(next.dataset.lang);
      next.focus();
    });
  }
}

restore();
wire();
refreshModels();
