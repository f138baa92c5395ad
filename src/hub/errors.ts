// One error type for everything between a model id and its local files. `usage` separates input a
// person must change (an unknown repo or quant tag, a malformed id) from failures worth retrying
// (network, a corrupted download); the CLI turns that into exit code 2 or 1.
export class HubError extends Error {
  constructor(
    message: string,
    readonly usage: boolean,
  ) {
    super(message);
    this.name = 'HubError';
  }
}
