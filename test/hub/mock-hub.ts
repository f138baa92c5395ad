// A loopback stand-in for the Hugging Face hub's HTTP API, as much of it as Paralon uses:
//   GET  /api/models/{repo}/revision/{rev}   model info (sha, siblings, gated, private)
//   GET  /api/models?search=Q                model search (suggestions for an unknown id)
//   HEAD|GET /{repo}/resolve/{rev}/{path}    small files: 200 with ETag (git sha1) and X-Repo-Commit;
//                                            LFS files: 302 to the CDN with X-Linked-Etag/-Size
//   GET  {cdn}/cdn/{sha256}                  the LFS bytes, with Range requests (206), on another origin
// Gated repos answer 401 (X-Error-Code: GatedRepo) without a token, unknown ones 401/404 as the hub does.
// Faults for tests: cut a connection after N bytes, corrupt one byte.
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MockRepo {
  commit: string;
  /** path → bytes; files ending in .safetensors or .gguf are served as LFS files. */
  files: Record<string, Buffer>;
  gated?: boolean;
}

export interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

export class MockHub {
  readonly repos = new Map<string, MockRepo>();
  /** sha256 → bytes of every LFS file, for the CDN. */
  readonly #lfs = new Map<string, Buffer>();
  readonly requests: LoggedRequest[] = [];
  /** The next CDN GET of this sha256 sends only this many bytes, then drops the connection. */
  cutAfter = new Map<string, number>();
  /** The next CDN GETs of this sha256 flip the byte at this offset. */
  corruptAt = new Map<string, number>();
  token = 'hf_mocktoken';
  #servers: Server[] = [];
  endpoint = '';
  /** The CDN's origin: another port, so the hub's token must not travel there. */
  cdn = '';

  async start(): Promise<this> {
    const listen = async () => {
      const server = createServer((req, res) => this.#handle(req, res));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      this.#servers.push(server);
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    this.endpoint = await listen();
    this.cdn = await listen();
    return this;
  }

  async stop(): Promise<void> {
    for (const server of this.#servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }

  addRepo(repo: string, files: Record<string, Buffer>, options: { gated?: boolean; commit?: string } = {}): MockRepo {
    const entry = { commit: options.commit ?? sha1(Buffer.from(repo + JSON.stringify(Object.keys(files)))), files, gated: options.gated };
    this.repos.set(repo, entry);
    for (const [file, bytes] of Object.entries(files)) if (isLfs(file)) this.#lfs.set(sha256(bytes), bytes);
    return entry;
  }

  /** Requests made to the hub or its CDN since `from` (an index into `requests`). */
  since(from: number): LoggedRequest[] {
    return this.requests.slice(from);
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url!, this.endpoint);
    this.requests.push({ method: req.method!, url: url.pathname, range: req.headers.range, authorization: req.headers.authorization });
    const authorized = req.headers.authorization === `Bearer ${this.token}`;
    const json = (status: number, body: unknown, code?: string) => {
      res.writeHead(status, { 'content-type': 'application/json', ...(code ? { 'x-error-code': code } : {}) });
      res.end(JSON.stringify(body));
    };

    if (url.pathname === '/api/models') {
      const q = (url.searchParams.get('search') ?? '').toLowerCase();
      const hits = [...this.repos.keys()].filter((r) => r.toLowerCase().includes(q));
      return json(200, hits.map((id) => ({ _id: id, id, private: false, downloads: 1, likes: 0, gated: false, lastModified: '2026-01-01T00:00:00Z' })));
    }
    let m = /^\/api\/models\/([^/]+\/[^/]+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (m) {
      const repo = this.repos.get(m[1]);
      if (!repo) return json(authorized ? 404 : 401, { error: 'Repository not found' }, 'RepoNotFound');
      const rev = decodeURIComponent(m[2]);
      if (rev !== 'main' && rev !== repo.commit) return json(404, { error: `Invalid rev id: ${rev}` }, 'RevisionNotFound');
      return json(200, {
        _id: m[1],
        id: m[1],
        sha: repo.commit,
        private: false,
        gated: repo.gated ? 'auto' : false,
        downloads: 0,
        likes: 0,
        lastModified: '2026-01-01T00:00:00Z',
        siblings: Object.keys(repo.files).map((rfilename) => ({ rfilename })),
      });
    }
    m = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    if (m) {
      const repo = this.repos.get(m[1]);
      if (!repo) return json(authorized ? 404 : 401, { error: 'Repository not found' }, 'RepoNotFound');
      if (repo.gated && !authorized) return json(401, { error: 'Access to model is restricted' }, 'GatedRepo');
      const rev = decodeURIComponent(m[2]);
      if (rev !== 'main' && rev !== repo.commit) return json(404, { error: 'Invalid rev id' }, 'RevisionNotFound');
      const file = decodeURIComponent(m[3]);
      const bytes = repo.files[file];
      if (!bytes) return json(404, { error: 'Entry not found' }, 'EntryNotFound');
      const common = { 'x-repo-commit': repo.commit, 'accept-ranges': 'bytes' };
      if (isLfs(file)) {
        const oid = [...this.#lfs].find(([, b]) => b === bytes)![0];
        res.writeHead(302, { ...common, location: `${this.cdn}/cdn/${oid}`, 'x-linked-etag': `"${oid}"`, 'x-linked-size': String(bytes.length), etag: `"${sha1(bytes)}"`, 'content-length': '0' });
        return void res.end();
      }
      res.writeHead(200, { ...common, etag: `"${gitSha1(bytes)}"`, 'content-length': String(bytes.length), 'content-type': 'application/octet-stream' });
      return void res.end(req.method === 'HEAD' ? undefined : bytes);
    }
    m = /^\/cdn\/([0-9a-f]{64})$/.exec(url.pathname);
    if (m) return this.#cdn(m[1], req, res);
    json(404, { error: 'not found' });
  }

  #cdn(oid: string, req: IncomingMessage, res: ServerResponse): void {
    let bytes = this.#lfs.get(oid);
    if (!bytes) return void res.writeHead(404).end();
    const corrupt = this.corruptAt.get(oid);
    if (corrupt !== undefined) {
      bytes = Buffer.from(bytes);
      bytes[corrupt] ^= 0xff;
    }
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) start = Number(range[1]);
    const body = bytes.subarray(start);
    const headers = { 'content-type': 'application/octet-stream', 'content-length': String(body.length), 'accept-ranges': 'bytes' };
    if (range) res.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${bytes.length - 1}/${bytes.length}` });
    else res.writeHead(200, headers);
    const cut = this.cutAfter.get(oid);
    if (cut !== undefined) {
      this.cutAfter.delete(oid);
      res.write(body.subarray(0, cut), () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    res.end(body);
  }
}

function isLfs(file: string): boolean {
  return file.endsWith('.safetensors') || file.endsWith('.gguf');
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function sha1(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** The git blob id of `bytes`: the hub's ETag of a small file. */
export function gitSha1(bytes: Buffer): string {
  return createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');
}
