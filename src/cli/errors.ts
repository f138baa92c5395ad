// How the CLI reports a failure: one line a person can act on (the stack only at --log-level debug)
// and an exit code that tells bad usage (2: change the command) from a runtime failure (1: retry, or
// look at the machine).
import { ConfigError } from '../server/config.js';
import { HubError } from '../hub/index.js';

export const EXIT_RUNTIME = 1;
export const EXIT_USAGE = 2;

/** Input the person must change: a bad flag, an unknown model, a directory that is not a checkpoint. */
export class UsageError extends Error {}

export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError || error instanceof ConfigError) return EXIT_USAGE;
  if (error instanceof HubError) return error.usage ? EXIT_USAGE : EXIT_RUNTIME;
  if ((error as { code?: unknown }).code?.toString().startsWith('ERR_PARSE_ARGS')) return EXIT_USAGE;
  return EXIT_RUNTIME;
}

/** The one line for `error`, with a hint where the fix is known. */
export function describeError(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/no CUDA device/.test(message)) return `${message}; run on the CPU with --device cpu (or the simulator with --device cuda-sim)`;
  const errno = error as NodeJS.ErrnoException;
  if (typeof errno.code === 'string' && errno.path && /^E[A-Z]+$/.test(errno.code)) return `cannot read ${errno.path} (${errno.code}): ${describeErrno(errno.code)}`;
  return message;
}

function describeErrno(code: string): string {
  switch (code) {
    case 'ENOENT':
      return 'the file is missing; a checkpoint directory holds config.json, tokenizer.json, tokenizer_config.json and safetensors weights';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a file stands where a directory was expected';
    default:
      return 'the file system refused';
  }
}

/** Prints the failure (stack only when `debug`) and returns the exit code. */
export function reportFailure(error: unknown, debug: boolean, stderr: NodeJS.WritableStream = process.stderr): number {
  stderr.write(`paralon: ${describeError(error)}\n`);
  if (debug && error instanceof Error && error.stack) stderr.write(error.stack + '\n');
  return exitCodeOf(error);
}
