// Renders chat messages with the checkpoint's own Jinja chat template (tokenizer_config.json's
// `chat_template` or chat_template.jinja), through @huggingface/jinja, with the variables transformers'
// apply_chat_template passes: messages, tools, add_generation_prompt, the special-token strings and the
// template's keyword arguments (Qwen3: enable_thinking). The library already trims blocks the way
// transformers does (trim_blocks, lstrip_blocks).

import { Template } from '@huggingface/jinja';
import type { ChatMessage, ChatTemplateOptions } from '../engine/types.js';
import './jinja-python-strip.js';

/** tokenizer_config.json's chat_template: one template, or named ones (then "default" is used). */
export type ChatTemplateSource = string | { name: string; template: string }[] | null;

/** The special-token strings templates may reference; null where the tokenizer has none. */
export interface TemplateSpecialTokens {
  bos_token: string | null;
  eos_token: string | null;
  pad_token: string | null;
  unk_token: string | null;
}

export class ChatTemplate {
  private readonly template: Template;
  /** The special tokens the tokenizer has; absent ones stay undefined in the template, as in transformers. */
  private readonly specialTokens: Partial<Record<keyof TemplateSpecialTokens, string>>;

  constructor(source: NonNullable<ChatTemplateSource>, specialTokens: TemplateSpecialTokens) {
    this.template = new Template(pickTemplate(source));
    this.specialTokens = Object.fromEntries(Object.entries(specialTokens).filter(([, text]) => text !== null));
  }

  /** The prompt text; encode it without adding special tokens (the template writes its own). */
  render(messages: readonly ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (messages.length === 0) throw new Error('a chat needs at least one message');
    return this.template.render({
      ...this.specialTokens,
      // The template reads `content` as a string (Qwen3's splits it); a tool-calling turn may have none.
      messages: messages.map((m) => (m.content === null ? { ...m, content: '' } : m)),
      tools: options.tools && options.tools.length > 0 ? options.tools : undefined,
      add_generation_prompt: options.addGenerationPrompt ?? true,
      enable_thinking: options.enableThinking ?? true,
    });
  }
}

function pickTemplate(source: NonNullable<ChatTemplateSource>): string {
  if (typeof source === 'string') return source;
  const named = source.find((t) => t.name === 'default');
  if (named === undefined) {
    throw new Error(`tokenizer_config.json has named chat templates (${source.map((t) => t.name).join(', ')}) but no "default"`);
  }
  return named.template;
}
