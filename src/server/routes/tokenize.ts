// POST /tokenize and POST /detokenize (vLLM's routes, outside /v1): the served model's tokenizer and
// chat template. `model` is optional; when given it must name the served model. Not metered: they
// run no model.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ChatMessage } from '../../engine/types.js';
import type { ServerContext } from '../context.js';
import { badRequest } from '../errors.js';
import { errorResponses } from '../schemas/common.js';
import {
  DetokenizeRequestSchema,
  DetokenizeResponseSchema,
  TokenizeRequestSchema,
  TokenizeResponseSchema,
  type DetokenizeRequest,
  type TokenizeRequest,
} from '../schemas/tokenize.js';

export async function tokenizeRoutes(app: FastifyInstance, { ctx }: { ctx: ServerContext }): Promise<void> {
  app.post(
    '/tokenize',
    { schema: { body: TokenizeRequestSchema, response: { 200: TokenizeResponseSchema, ...errorResponses } } },
    async (request: FastifyRequest<{ Body: TokenizeRequest }>) => {
      const body = request.body;
      const model = ctx.modelFor(body.model ?? ctx.modelId);
      if ((body.prompt === undefined) === (body.messages === undefined))
        throw badRequest('give either prompt or messages', body.prompt === undefined ? 'prompt' : 'messages');
      let tokens: number[];
      if (body.prompt !== undefined) {
        tokens = model.tokenize({ prompt: body.prompt, addSpecialTokens: body.add_special_tokens ?? true });
      } else {
        const messages: ChatMessage[] = body.messages!.map((m) => ({
          role: m.role === 'developer' ? 'system' : m.role,
          content: typeof m.content === 'string' ? m.content : m.content.map((part) => part.text).join('\n'),
        }));
        try {
          tokens = model.tokenize({
            messages,
            addGenerationPrompt: body.add_generation_prompt ?? true,
            enableThinking: body.chat_template_kwargs?.enable_thinking ?? undefined,
          });
        } catch (error) {
          const reason = error instanceof Error ? error.message.slice(0, 200) : 'unknown reason';
          throw badRequest(`the chat template cannot render these messages: ${reason}`, 'messages');
        }
      }
      return {
        count: tokens.length,
        max_model_len: model.contextLength,
        tokens,
        token_strs: body.return_token_strs ? tokens.map((id) => model.tokenizer.tokenText(id)) : null,
      };
    },
  );
  app.post(
    '/detokenize',
    { schema: { body: DetokenizeRequestSchema, response: { 200: DetokenizeResponseSchema, ...errorResponses } } },
    async (request: FastifyRequest<{ Body: DetokenizeRequest }>) => {
      const model = ctx.modelFor(request.body.model ?? ctx.modelId);
      return { prompt: model.detokenize(request.body.tokens) };
    },
  );
}
