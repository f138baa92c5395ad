// The server's open sockets and how many requests each is answering, so a shutdown can close the idle
// ones once in-flight generations are done. Node's own closeIdleConnections() skips sockets that have
// not sent a request yet (clients such as undici open spare ones), and those would hold server.close()
// open until the headers timeout, a minute later.
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

export class ConnectionTracker {
  readonly #requests = new Map<Socket, number>();
  #closing = false;

  constructor(server: Server) {
    server.on('connection', (socket: Socket) => {
      this.#requests.set(socket, 0);
      socket.once('close', () => this.#requests.delete(socket));
    });
    server.on('request', (request, response) => {
      const socket: Socket = request.socket;
      this.#requests.set(socket, (this.#requests.get(socket) ?? 0) + 1);
      // 'close' follows 'finish': the response has been handed to the OS (or the client went away).
      response.once('close', () => {
        const left = (this.#requests.get(socket) ?? 1) - 1;
        this.#requests.set(socket, left);
        if (this.#closing && left === 0) socket.destroy();
      });
    });
  }

  /** Closes every socket not answering a request now, and each remaining one when its response ends. */
  closeIdle(): void {
    this.#closing = true;
    for (const [socket, requests] of this.#requests) if (requests === 0) socket.destroy();
  }
}
