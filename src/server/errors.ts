// Every failure leaves the server as OpenAI's error object {"error": {message, type, param, code}} with
// the matching status. Only this module maps errors to HTTP; a fault the server did not anticipate
// becomes a 500 whose message says nothing about internals (the log keeps the cause).
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { EngineBusyError, RequestError } from '../engine/engine.js';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'rate_limit_error' | 'server_error';

export interface OpenAIErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

/** An error with its HTTP status and OpenAI fields, thrown anywhere in a route. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly type: ErrorType = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  toBody(): OpenAIErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, 'invalid_request_error', param, code);

export const modelNotFound = (model: string) =>
  new ApiError(404, `The model '${model}' does not exist`, 'invalid_request_error', 'model', 'model_not_found');

export const invalidApiKey = (message: string) => new ApiError(401, message, 'authentication_error', null, 'invalid_api_key');

export const modelLoading = () => new ApiError(503, 'the model is still loading; try again shortly', 'server_error', null, 'model_loading');

export const shuttingDown = () => new ApiError(503, 'the server is shutting down', 'server_error', null, 'server_shutting_down');

/** Maps anything thrown while handling a request to an ApiError. */
export function toApiError(error: unknown): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof RequestError) {
    const code = /context length/.test(error.message) ? 'context_length_exceeded' : null;
    return badRequest(error.message, error.param, code);
  }
  if (error instanceof EngineBusyError) return new ApiError(429, error.message, 'rate_limit_error', null, 'rate_limit_exceeded');
  const fastifyError = error as Partial<FastifyError>;
  if (fastifyError.validation) return validationError(fastifyError as FastifyError);
  const status = fastifyError.statusCode;
  // Fastify's own client errors (bad JSON, empty body, 413, 415, bad Content-Length): their messages are
  // fixed strings written for clients.
  if (typeof status === 'number' && status >= 400 && status < 500 && typeof fastifyError.code === 'string' && fastifyError.code.startsWith('FST_'))
    return new ApiError(status, fastifyError.message ?? 'bad request', 'invalid_request_error', null, null);
  return new ApiError(500, 'the server had an internal error while processing the request', 'server_error');
}

/** A JSON schema violation (Ajv, first error only) as OpenAI's 400, naming the field in `param`. */
function validationError(error: FastifyError): ApiError {
  const errors = error.validation ?? [];
  // A failed anyOf reports each branch's error first, then its own: name every alternative.
  const anyOf = errors.find((e) => e.keyword === 'anyOf');
  if (anyOf) {
    const param = jsonPointerToParam(anyOf.instancePath);
    const reasons = [...new Set(errors.filter((e) => e !== anyOf).map((e) => e.message))];
    return badRequest(`'${param}' is invalid: it ${reasons.join(', or ')}`, param || null);
  }
  // A bad key (propertyNames) reports the key's own failure first: name the object and the key.
  const badKey = errors.find((e) => e.keyword === 'propertyNames');
  if (badKey) {
    const param = jsonPointerToParam(badKey.instancePath);
    return badRequest(`'${param}' has an invalid key '${String((badKey.params as { propertyName?: unknown }).propertyName)}'`, param || null);
  }
  const first = errors[0];
  if (!first) return badRequest('the request body is invalid');
  const params = first.params as Record<string, unknown>;
  let param = jsonPointerToParam(first.instancePath);
  let message: string;
  switch (first.keyword) {
    case 'required':
      param = joinParam(param, String(params.missingProperty));
      message = `'${param}' is required`;
      break;
    case 'additionalProperties':
      param = joinParam(param, String(params.additionalProperty));
      message = `unrecognized request argument supplied: '${param}'`;
      break;
    case 'enum':
      message = `'${param}' must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
      break;
    default:
      message = param ? `'${param}' ${first.message}` : `the request body ${first.message}`;
  }
  return badRequest(message, param || null);
}

/** "/messages/0/role" → "messages[0].role". */
function jsonPointerToParam(pointer: string): string {
  let param = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    param = /^\d+$/.test(part) ? `${param}[${part}]` : joinParam(param, part);
  }
  return param;
}

function joinParam(parent: string, child: string): string {
  return parent ? `${parent}.${child}` : child;
}

export function sendError(reply: FastifyReply, error: ApiError): FastifyReply {
  return reply.code(error.statusCode).type('application/json; charset=utf-8').send(error.toBody());
}

/** Installs the error and not-found handlers on the root instance (they apply to every plugin). */
export function installErrorHandlers(app: FastifyInstance): void {
  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const apiError = toApiError(error);
    if (apiError.statusCode >= 500) request.log.error({ err: error }, 'request failed');
    return sendError(reply, apiError);
  });
  app.setNotFoundHandler((request: FastifyRequest, reply: FastifyReply) =>
    sendError(reply, new ApiError(404, `no route for ${request.method} ${request.url.split('?')[0].slice(0, 100)}`, 'invalid_request_error', null, 'not_found')),
  );
}
