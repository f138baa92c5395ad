// The playground page in real headless Chromium (Debian's, driven by playwright-core) against real
// servers on the demo model: one open, one that requires API keys. Streaming, Stop (the server
// cancels), "Copy as code" (the snippets are run: curl and Node against the server, Python against a
// stub of the openai package), the 401/429/network messages, folded reasoning, phone width and dark
// mode. Screenshots go to test/artifacts/playground/. Without /usr/bin/chromium the browser tests are
// skipped with one line naming the install command, unless PARALON_REQUIRE_BROWSER=1 (set by .ci/run)
// turns the absence into a failure.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { FastifyInstance } from 'fastify';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, writeDemoModel, type Model } from '../../src/index.js';
import { createServer } from '../../src/server/app.js';
import { DEMO_MODEL_ID } from '../../src/server/serve.js';
import { withStore } from '../../src/server/store/open.js';

const run = promisify(execFile);
const CHROMIUM = '/usr/bin/chromium';
const HAS_CHROMIUM = existsSync(CHROMIUM);
const REQUIRE_BROWSER = process.env.PARALON_REQUIRE_BROWSER === '1';
if (!HAS_CHROMIUM && !REQUIRE_BROWSER)
  console.warn(`playground: ${CHROMIUM} is absent, so the browser tests are skipped (install it: apt-get install chromium)`);
const ARTIFACTS = path.resolve('test/artifacts/playground');

interface Served {
  app: FastifyInstance;
  origin: string;
  dataDir: string;
}

let model: Model;
let modelDir: string;
let open: Served;
let keyed: Served & { key: string };
let browser: Browser;

function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `paralon-playground-${prefix}-`));
}

/** A real server (createServer registers the playground) on an ephemeral port. */
async function serve(dataDir: string): Promise<Served> {
  const app = await createServer({ model, modelId: DEMO_MODEL_ID, dataDir, logLevel: 'error' });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return { app, origin: `http://127.0.0.1:${address.port}`, dataDir };
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  modelDir = tempDir('model');
  writeDemoModel(modelDir);
  // A long context, so a generation with a large max_tokens runs long enough to be stopped.
  model = await loadModel(modelDir, { device: 'cpu', maxModelLen: 8192, kvCacheMemory: 64 * 1024 * 1024, maxNumSeqs: 8, maxNumBatchedTokens: 512 });
  open = await serve(tempDir('open'));
  const keyedDir = tempDir('keyed');
  const { key } = await withStore({ dataDir: keyedDir }, (store) => store.keys.create('playground-test'));
  keyed = { ...(await serve(keyedDir)), key };
  if (!HAS_CHROMIUM) return;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
});

afterAll(async () => {
  await browser?.close();
  for (const s of [open, keyed]) {
    await s?.app.close();
    if (s) rmSync(s.dataDir, { recursive: true, force: true });
  }
  model?.dispose();
  if (modelDir) rmSync(modelDir, { recursive: true, force: true });
});

/** A fresh context (empty localStorage) and page; fails the test on any script error or CSP violation. */
async function openPage(server: Served, options: Parameters<Browser['newContext']>[0] = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, ...options });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (/Content Security Policy|Uncaught/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  await page.goto(server.origin + '/');
  return { context, page, problems };
}

async function waitForModel(page: Page) {
  await expect.poll(() => page.locator('#model').inputValue(), { timeout: 10_000 }).toBe(DEMO_MODEL_ID);
}

async function fillSettings(page: Page, settings: Record<string, string>) {
  for (const [id, value] of Object.entries(settings)) await page.fill(`#${id}`, value);
}

/** The text of the last message in the conversation. */
const lastMessage = (page: Page) => page.locator('#messages > li').last();

async function close(context: BrowserContext, problems: string[]) {
  await context.close();
  expect(problems).toEqual([]);
}

describe('serving the page', () => {
  it('serves /, /playground and the assets with their content types and a strict CSP, without a key', async () => {
    for (const route of ['/', '/playground', '/playground/']) {
      const res = await fetch(keyed.origin + route);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('content-security-policy')).toMatch(/^default-src 'self';/);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(await res.text()).toContain('<title>Paralon Playground</title>');
    }
    const types: Record<string, string> = {
      'playground.js': 'text/javascript; charset=utf-8',
      'snippets.js': 'text/javascript; charset=utf-8',
      'playground.css': 'text/css; charset=utf-8',
      'favicon.svg': 'image/svg+xml',
    };
    for (const [name, type] of Object.entries(types)) {
      const res = await fetch(`${keyed.origin}/playground/assets/${name}`);
      expect(res.status, name).toBe(200);
      expect(res.headers.get('content-type')).toBe(type);
      const again = await fetch(`${keyed.origin}/playground/assets/${name}`, { headers: { 'if-none-match': res.headers.get('etag')! } });
      expect(again.status).toBe(304);
    }
    const missing = await fetch(`${keyed.origin}/playground/assets/plugin.ts`);
    expect(missing.status).toBe(404);
    expect((await missing.json()).error.code).toBe('not_found');
    // The API itself still needs the key.
    expect((await fetch(`${keyed.origin}/v1/models`)).status).toBe(401);
  });
});

describe('Chromium', () => {
  it.runIf(REQUIRE_BROWSER)('is installed when PARALON_REQUIRE_BROWSER=1 (CI always runs the browser tests)', () => {
    expect(HAS_CHROMIUM, `${CHROMIUM} is missing: apt-get install chromium`).toBe(true);
  });
});

describe.skipIf(!HAS_CHROMIUM)('in the browser', () => {
  it('streams the answer into the page as it arrives and shows usage and speed', async () => {
    const { context, page, problems } = await openPage(open);
    await waitForModel(page);
    await expect.poll(() => page.textContent('#model-status')).toContain('random weights');
    await page.fill('#system-prompt', 'You are terse.');
    await fillSettings(page, { max_tokens: '48', seed: '11', temperature: '0.8' });
    await page.fill('#prompt', 'Count from one to ten.');
    // Record every distinct length of the streaming message's text until the generation ends.
    const lengths = page.evaluate(
      () =>
        new Promise<number[]>((resolve) => {
          const seen: number[] = [];
          const tick = () => {
            const item = document.querySelector('#messages > li.streaming');
            const text = item?.querySelector('textarea')?.value;
            if (text !== undefined && text.length > 0 && seen.at(-1) !== text.length) seen.push(text.length);
            if (seen.length > 0 && !item) resolve(seen);
            else requestAnimationFrame(tick);
          };
          tick();
        }),
    );
    await page.keyboard.press('Control+Enter');
    expect((await lengths).length).toBeGreaterThanOrEqual(3);

    const stats = await lastMessage(page).locator('.stats').textContent();
    expect(stats).toMatch(/^\d+ prompt \+ \d+ completion tokens · [\d.]+ tok\/s · TTFT \d+ ms/);
    expect(await page.textContent('#run-status')).toContain('Done');
    // The page sent what its settings say: the same request without streaming gives the same answer.
    const res = await fetch(`${open.origin}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        model: DEMO_MODEL_ID,
        messages: [{ role: 'system', content: 'You are terse.' }, { role: 'user', content: 'Count from one to ten.' }],
        max_tokens: 48,
        seed: 11,
        temperature: 0.8,
        chat_template_kwargs: { enable_thinking: true },
      }),
    });
    const completion = await res.json();
    expect(await lastMessage(page).locator('textarea').inputValue()).toBe(completion.choices[0].message.content);
    const { prompt_tokens, completion_tokens } = completion.usage;
    expect(stats).toContain(`${prompt_tokens} prompt + ${completion_tokens} completion tokens`);
    expect(await page.locator('#messages > li').count()).toBe(2);
    await page.screenshot({ path: path.join(ARTIFACTS, 'desktop-light.png'), fullPage: true });

    // The conversation survives a reload (localStorage), and messages can be edited and deleted.
    await page.reload();
    await waitForModel(page);
    expect(await page.locator('#messages > li').count()).toBe(2);
    await lastMessage(page).locator('textarea').fill('An edited answer.');
    await lastMessage(page).locator('.role').selectOption('user');
    await page.reload();
    expect(await lastMessage(page).locator('textarea').inputValue()).toBe('An edited answer.');
    expect(await lastMessage(page).locator('.role').inputValue()).toBe('user');
    await lastMessage(page).locator('.delete').click();
    expect(await page.locator('#messages > li').count()).toBe(1);
    // Add appends the composer's text with the chosen role, without sending.
    await page.fill('#prompt', 'A written assistant turn.');
    await page.selectOption('#add-role', 'assistant');
    await page.click('#add');
    expect(await page.locator('#messages > li').count()).toBe(2);
    expect(await lastMessage(page).locator('.role').inputValue()).toBe('assistant');
    expect(await lastMessage(page).locator('textarea').inputValue()).toBe('A written assistant turn.');
    expect(await page.inputValue('#prompt')).toBe('');
    await close(context, problems);
  });

  it('stops mid-stream, and the server cancels the generation', async () => {
    const { context, page, problems } = await openPage(open);
    await waitForModel(page);
    await fillSettings(page, { max_tokens: '8000' });
    await page.fill('#prompt', 'Write a very long story.');
    await page.click('#send');
    await expect.poll(() => lastMessage(page).locator('textarea').inputValue(), { timeout: 10_000 }).not.toBe('');
    expect(open.app.paralon.context.tracker.size).toBe(1);
    await page.click('#stop-generation');
    const stoppedAt = Date.now();
    await expect.poll(() => open.app.paralon.context.tracker.size, { timeout: 5_000 }).toBe(0);
    await expect.poll(() => model.idle, { timeout: 5_000 }).toBe(true);
    expect(Date.now() - stoppedAt).toBeLessThan(3_000);
    expect(await lastMessage(page).locator('.stats').textContent()).toMatch(/^stopped after [\d.]+ s$/);
    expect(await page.textContent('#run-status')).toMatch(/^Stopped after [\d.]+ s; closing the request cancels/);
    expect(await page.isVisible('#send')).toBe(true);
    expect(await page.isHidden('#stop-generation')).toBe(true);
    await close(context, problems);
  });

  it('copies the current settings and messages as curl, Python and Node code that run against the server', async () => {
    const { context, page, problems } = await openPage(keyed);
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: keyed.origin });
    await page.fill('#api-key', keyed.key);
    await page.press('#api-key', 'Enter');
    await page.locator('#api-key').blur();
    await waitForModel(page);
    const system = `Answer in "quotes" and don't use $HOME or \`backticks\`.`;
    await page.fill('#system-prompt', system);
    await fillSettings(page, { temperature: '0.7', top_p: '0.9', top_k: '12', max_tokens: '9', seed: '42', stop: 'END\n\\nUser:' });
    await page.click('#thinking');
    await page.fill('#prompt', 'Grüße — say hi');
    await page.click('#open-code');
    const snippet: Record<string, string> = {};
    for (const lang of ['curl', 'python', 'node']) {
      await page.click(`#tab-${lang}`);
      snippet[lang] = (await page.textContent('#code'))!;
    }
    await page.click('#copy-code');
    await expect.poll(() => page.textContent('#copy-status')).toBe('Copied.');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(snippet.node);
    await page.screenshot({ path: path.join(ARTIFACTS, 'copy-as-code.png') });

    const expected = {
      model: DEMO_MODEL_ID,
      messages: [
        { role: 'system', content: system },
        { role: 'user', content: 'Grüße — say hi' },
      ],
      temperature: 0.7,
      top_p: 0.9,
      top_k: 12,
      max_tokens: 9,
      seed: 42,
      stop: ['END', '\nUser:'],
      chat_template_kwargs: { enable_thinking: false },
    };
    for (const text of Object.values(snippet)) {
      expect(text).toContain(`${keyed.origin}/v1`);
      expect(text).toContain('PARALON_API_KEY');
      expect(text).not.toContain(keyed.key);
    }
    expect(snippet.python).toMatch(/extra_body=\{"top_k": 12, "chat_template_kwargs": \{"enable_thinking": False\}\}/);
    expect(snippet.node).toMatch(/"top_k": 12,/);

    const env = { ...process.env, PARALON_API_KEY: keyed.key };
    const dir = path.join(ARTIFACTS, 'snippets');
    mkdirSync(dir, { recursive: true });
    // curl: the body is exactly the expected request, and the server answers it.
    const curl = await run('bash', ['-c', snippet.curl], { env });
    const answer = JSON.parse(curl.stdout);
    expect(answer.model).toBe(DEMO_MODEL_ID);
    expect(answer.usage.completion_tokens).toBeLessThanOrEqual(9);
    const direct = await fetch(`${keyed.origin}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${keyed.key}` },
      body: JSON.stringify(expected),
    });
    const content = (await direct.json()).choices[0].message.content as string;
    expect(answer.choices[0].message.content).toBe(content);
    // Node: the official client, run from a file inside the repository so `openai` resolves.
    writeFileSync(path.join(dir, 'chat.mjs'), snippet.node);
    const node = await run(process.execPath, [path.join(dir, 'chat.mjs')], { env });
    expect(node.stdout).toBe(`${content}\n`);
    // Python: a stub `openai` package records what the script passes to the client.
    if (await hasPython()) {
      const stub = path.join(dir, 'py-stub', 'openai');
      mkdirSync(stub, { recursive: true });
      writeFileSync(path.join(stub, '__init__.py'), PYTHON_STUB);
      writeFileSync(path.join(dir, 'chat.py'), snippet.python);
      const python = await run('python3', [path.join(dir, 'chat.py')], { env: { ...env, PYTHONPATH: path.dirname(stub) } });
      const recorded = JSON.parse(python.stdout.split('\n')[0]);
      expect(recorded).toEqual({ base_url: `${keyed.origin}/v1`, api_key: keyed.key, body: expected });
    }
    await close(context, problems);
  });

  it('says clearly when the key is wrong (401)', async () => {
    const { context, page, problems } = await openPage(keyed);
    // Without a key: the model list is refused.
    await expect.poll(() => page.textContent('#error'), { timeout: 10_000 }).toContain('(401)');
    expect(await page.textContent('#error')).toContain("You didn't provide an API key");
    await page.fill('#api-key', 'prlc_' + 'x'.repeat(43));
    await page.press('#api-key', 'Enter');
    await page.locator('#api-key').blur();
    await expect.poll(() => page.textContent('#error')).toContain('Incorrect API key provided');
    const error = await page.textContent('#error');
    expect(error).toMatch(/^The server rejected the API key \(401\): Incorrect API key provided\. Enter a valid key/);
    expect(await page.getAttribute('#api-key', 'aria-invalid')).toBe('true');
    // Sending says the same, and keeps the unsent text in the composer.
    await page.evaluate(() => (document.getElementById('error')!.hidden = true));
    await page.fill('#prompt', 'hello?');
    await page.keyboard.press('Control+Enter');
    expect(await page.textContent('#error')).toBe(error);
    expect(await page.inputValue('#prompt')).toBe('hello?');
    await page.screenshot({ path: path.join(ARTIFACTS, 'wrong-key.png') });
    // The right key clears the message and loads the model.
    await page.fill('#api-key', keyed.key);
    await page.locator('#api-key').blur();
    await waitForModel(page);
    expect(await page.isHidden('#error')).toBe(true);
    await close(context, problems);
  });

  it('shows 429 and network errors, and folds the reasoning apart from the answer', async () => {
    const { context, page, problems } = await openPage(open);
    await waitForModel(page);
    const chat = `${open.origin}/v1/chat/completions`;

    await page.route(chat, (route) =>
      route.fulfill({
        status: 429,
        contentType: 'application/json',
        body: JSON.stringify({ error: { message: 'too many requests are waiting', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } }),
      }),
    );
    await page.fill('#prompt', 'hello');
    await page.click('#send');
    await expect.poll(() => page.textContent('#error')).toBe('The server is busy (429): too many requests are waiting. Wait a moment and send again.');
    await page.unroute(chat);

    await page.route(chat, (route) => route.abort('connectionrefused'));
    await page.click('#send');
    await expect.poll(() => page.textContent('#error')).toMatch(/^Network error: the server at http:\/\/127\.0\.0\.1:\d+ could not be reached/);
    await page.unroute(chat);

    // A thinking model's stream: reasoning deltas, then the answer, cut at awkward places.
    const chunk = (delta: object, finish: string | null = null) =>
      `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: DEMO_MODEL_ID, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }] })}\n\n`;
    const sse =
      chunk({ role: 'assistant', content: '' }) +
      chunk({ reasoning_content: 'The user greets; ' }) +
      chunk({ reasoning_content: 'answer briefly.' }) +
      chunk({ content: 'Hello' }) +
      chunk({ content: ' there!' }, 'stop') +
      `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1, model: DEMO_MODEL_ID, choices: [], usage: { prompt_tokens: 9, completion_tokens: 6, total_tokens: 15 } })}\r\n\r\n` +
      'data: [DONE]\n\n';
    await page.route(chat, (route) => route.fulfill({ status: 200, contentType: 'text/event-stream', body: sse }));
    await page.click('#send');
    await expect.poll(() => lastMessage(page).locator('textarea').inputValue()).toBe('Hello there!');
    const reasoning = lastMessage(page).locator('details.reasoning');
    expect(await reasoning.isVisible()).toBe(true);
    expect(await reasoning.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    expect(await reasoning.locator('.reasoning-text').textContent()).toBe('The user greets; answer briefly.');
    expect(await lastMessage(page).locator('.stats').textContent()).toMatch(/^9 prompt \+ 6 completion tokens · [\d.]+ tok\/s · TTFT \d+ ms · finish: stop$/);
    expect(await page.isHidden('#error')).toBe(true);
    await close(context, problems);
  });

  it('fits a phone screen and follows the dark color scheme', async () => {
    const { context, page, problems } = await openPage(open, { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, hasTouch: true, colorScheme: 'dark' });
    await waitForModel(page);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    expect(await page.evaluate(() => (document.getElementById('settings-panel') as HTMLDetailsElement).open)).toBe(false);
    const background = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const [r, g, b] = background.match(/\d+/g)!.map(Number);
    expect(r + g + b).toBeLessThan(120);
    // The settings unfold on a tap.
    await page.click('#settings-panel summary');
    await fillSettings(page, { max_tokens: '12' });
    await page.screenshot({ path: path.join(ARTIFACTS, 'phone-dark-settings.png') });
    await page.click('#settings-panel summary');
    await page.fill('#prompt', 'hi');
    await page.click('#send');
    await expect.poll(() => page.isVisible('#send'), { timeout: 10_000 }).toBe(true);
    for (const id of ['#prompt', '#send', '#open-code', '#model-status']) {
      const box = (await page.locator(id).boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(390);
    }
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: path.join(ARTIFACTS, 'phone-dark.png') });
    await close(context, problems);
  });
});

async function hasPython(): Promise<boolean> {
  try {
    await run('python3', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** Stands in for the openai package: prints what the snippet configures and sends, merged as the real client merges extra_body. */
const PYTHON_STUB = `import json

class _Completions:
    def __init__(self, client):
        self._client = client

    def create(self, extra_body=None, **kwargs):
        body = dict(kwargs)
        body.update(extra_body or {})
        print(json.dumps({"base_url": self._client.base_url, "api_key": self._client.api_key, "body": body}))
        message = type("Message", (), {"content": "stub", "reasoning_content": None})()
        choice = type("Choice", (), {"message": message})()
        return type("Completion", (), {"choices": [choice]})()

class _Chat:
    def __init__(self, client):
        self.completions = _Completions(client)

class OpenAI:
    def __init__(self, base_url, api_key):
        self.base_url = base_url
        self.api_key = api_key
        self.chat = _Chat(self)
`;
