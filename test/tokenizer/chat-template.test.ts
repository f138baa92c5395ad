// Qwen3's chat template rendered through @huggingface/jinja, against prompts written by hand from the
// template's text (tokenizer_config.json of Qwen3, see QWEN3_TOKENIZER_DIR).

import { Environment, Template } from '@huggingface/jinja';
import { beforeAll, describe, expect, it } from 'vitest';
import type { ChatMessage } from '../../src/engine/types.js';
import { ChatTemplate, type Tokenizer } from '../../src/tokenizer/index.js';
import { pythonStrip } from '../../src/tokenizer/jinja-python-strip.js';
import { loadQwen3Tokenizer } from './qwen3.js';

let template: ChatTemplate;
beforeAll(async () => {
  const tok: Tokenizer = await loadQwen3Tokenizer();
  template = tok.chatTemplate!;
});

const NO_SPECIAL_TOKENS = { bos_token: null, eos_token: null, pad_token: null, unk_token: null };

describe('Qwen3 chat template', () => {
  it('renders system + user with the generation prompt (thinking on by default)', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: 'What is 2+2?' },
    ];
    expect(template.render(messages)).toBe(
      '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' +
        '<|im_start|>user\nWhat is 2+2?<|im_end|>\n' +
        '<|im_start|>assistant\n',
    );
    expect(template.render(messages, { enableThinking: true })).toBe(template.render(messages));
  });

  it('inserts an empty think block when enable_thinking is false', () => {
    expect(template.render([{ role: 'user', content: 'Hi' }], { enableThinking: false })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
  });

  it('leaves the generation prompt out when asked', () => {
    expect(template.render([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: false })).toBe(
      '<|im_start|>user\nHi<|im_end|>\n',
    );
  });

  it("strips earlier assistant turns' reasoning, keeps the reasoning after the last user turn", () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'First question' },
      { role: 'assistant', content: '<think>\nLet me think.\n</think>\n\nFirst answer' },
      { role: 'user', content: 'Second question' },
      { role: 'assistant', content: '<think>\n\nMore thought\n\n</think>\n\n\nSecond answer' },
    ];
    expect(template.render(messages, { addGenerationPrompt: false })).toBe(
      '<|im_start|>system\nBe brief.<|im_end|>\n' +
        '<|im_start|>user\nFirst question<|im_end|>\n' +
        '<|im_start|>assistant\nFirst answer<|im_end|>\n' +
        '<|im_start|>user\nSecond question<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\nMore thought\n</think>\n\nSecond answer<|im_end|>\n',
    );
  });

  it('renders a multi-turn chat ending with a user turn', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Hello' },
      { role: 'assistant', content: 'Hi! How can I help?' },
      { role: 'user', content: 'Tell me a joke.' },
    ];
    expect(template.render(messages, { enableThinking: false })).toBe(
      '<|im_start|>user\nHello<|im_end|>\n' +
        '<|im_start|>assistant\nHi! How can I help?<|im_end|>\n' +
        '<|im_start|>user\nTell me a joke.<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\n\n</think>\n\n',
    );
  });

  it("keeps spaces that Python's lstrip('\\n') / strip('\\n') keep", () => {
    // The template reads content.split('</think>')[-1].lstrip('\n') and reasoning .strip('\n'); Python
    // strips only newlines there, so the answer's indentation and the reasoning's spaces survive.
    const messages: ChatMessage[] = [
      { role: 'user', content: 'Code?' },
      { role: 'assistant', content: '<think>\n  indented thought \n</think>\n\n    x = 1' },
    ];
    expect(template.render(messages, { addGenerationPrompt: false })).toBe(
      '<|im_start|>user\nCode?<|im_end|>\n' +
        '<|im_start|>assistant\n<think>\n  indented thought \n</think>\n\n    x = 1<|im_end|>\n',
    );
  });

  it('renders a later system message inline and passes special tokens to the template', () => {
    const messages: ChatMessage[] = [
      { role: 'user', content: 'a' },
      { role: 'system', content: 'b' },
    ];
    expect(template.render(messages, { addGenerationPrompt: false })).toBe(
      '<|im_start|>user\na<|im_end|>\n<|im_start|>system\nb<|im_end|>\n',
    );
    const eos = new ChatTemplate('{{ bos_token }}|{{ eos_token }}|{{ pad_token }}', {
      ...NO_SPECIAL_TOKENS,
      eos_token: '<|im_end|>',
      pad_token: '<|endoftext|>',
    });
    expect(eos.render([{ role: 'user', content: '' }])).toBe('|<|im_end|>|<|endoftext|>');
  });

  it('picks the "default" of named templates and rejects an empty chat', () => {
    const named = new ChatTemplate(
      [
        { name: 'tool_use', template: 'tools' },
        { name: 'default', template: '{{ messages[0].content }}' },
      ],
      NO_SPECIAL_TOKENS,
    );
    expect(named.render([{ role: 'user', content: 'ok' }])).toBe('ok');
    expect(() => new ChatTemplate([{ name: 'rag', template: '' }], NO_SPECIAL_TOKENS)).toThrow(/no "default"/);
    expect(() => template.render([])).toThrow(/at least one message/);
  });
});

describe('Python string semantics in jinja', () => {
  it('strips the given characters as a set, whitespace by default', () => {
    const render = (expr: string) => new Template(`{{ ${expr} }}`).render({ s: '\n\n ab \n\nba\n' });
    expect(render("s.strip('\\n')")).toBe(' ab \n\nba');
    expect(render("s.lstrip('\\n')")).toBe(' ab \n\nba\n');
    expect(render("s.rstrip('\\n')")).toBe('\n\n ab \n\nba');
    expect(render("s.strip('\\nab ')")).toBe('');
    expect(render('s.strip()')).toBe('ab \n\nba');
    expect(render('s.rstrip(none)')).toBe('\n\n ab \n\nba');
    expect(() => render('s.strip(1)')).toThrow(/must be a string or none/);
    // Python's whitespace set: U+FEFF is not whitespace, U+0085 and U+001C are.
    expect(pythonStrip('\ufeff\x85x\x1c', null, true, true)).toBe('\ufeff\x85x');
    expect(pythonStrip('👍x👍', '👍', true, true)).toBe('x');
    // Other string methods still work.
    expect(new Environment().set('t', 'x').builtins.has('upper')).toBe(true);
  });
});
