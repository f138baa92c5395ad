// The playground: a static page at / and /playground, its assets under /playground/assets/. It is open
// (no API key) because it holds nothing secret: the browser talks to /v1 with the key the user types.
//
// The handful of small files is read once at registration and served from memory with a strong ETag,
// so a reload costs a 304. Every response carries a strict Content-Security-Policy: the page may load
// and fetch only from this origin, runs no inline script or style, and cannot be framed.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

interface Asset {
  body: Buffer;
  contentType: string;
  etag: string;
}

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** The files under /playground/assets/ (index.html is served at the page routes instead). */
const ASSET_FILES = ['playground.css', 'playground.js', 'conversation.js', 'chat-stream.js', 'settings.js', 'snippets.js', 'favicon.svg'];

const SECURITY_HEADERS = {
  'content-security-policy':
    "default-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; object-src 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // Revalidate on every load (the ETag makes that a 304): a server upgrade never mixes old and new files.
  'cache-control': 'no-cache',
};

export async function playgroundRoutes(app: FastifyInstance): Promise<void> {
  const dir = assetDirectory();
  const page = loadAsset(dir, 'index.html');
  const assets = new Map(ASSET_FILES.map((name) => [name, loadAsset(dir, name)]));

  const sendPage = (request: FastifyRequest, reply: FastifyReply) => send(request, reply, page);
  app.get('/', sendPage);
  app.get('/playground', sendPage);
  app.get('/playground/', sendPage);
  app.get('/playground/assets/:name', (request: FastifyRequest<{ Params: { name: string } }>, reply: FastifyReply) => {
    const asset = assets.get(request.params.name);
    if (asset === undefined) return reply.callNotFound();
    return send(request, reply, asset);
  });
}

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply {
  reply.headers(SECURITY_HEADERS).header('etag', asset.etag);
  if (request.headers['if-none-match'] === asset.etag) return reply.code(304).send();
  return reply.type(asset.contentType).send(asset.body);
}

/**
 * Where the static files are: next to this module when run from source (tsx, vitest), or in the
 * package's src/server/playground/ when run from dist/ (tsc copies no assets; src/ ships in the package).
 */
function assetDirectory(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [here, path.resolve(here, '../../../src/server/playground')];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'index.html')));
  if (found === undefined) throw new Error(`the playground's files are missing (looked in ${candidates.join(', ')})`);
  return found;
}

function loadAsset(dir: string, name: string): Asset {
  const body = readFileSync(path.join(dir, name));
  const contentType = CONTENT_TYPES[path.extname(name)];
  if (contentType === undefined) throw new Error(`no content type for the playground file ${name}`);
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return { body, contentType, etag };
}
