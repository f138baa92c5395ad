// The few hub HTTP calls Paralon makes: repository info (commit + file list) and model search through
// @huggingface/hub, and the per-file HEAD of a resolve URL that huggingface_hub also makes (etag,
// size, commit, and the CDN location of LFS files). Hub HTTP failures become messages a person can act on.
import { HubError } from './errors.js';

// Loaded on the first request: a cached model starts without the package's import cost (~150 ms).
const hubPackage = () => import('@huggingface/hub');

export interface HubClient {
  endpoint: string;
  token?: string;
  fetch: typeof fetch;
}

export interface RepoInfo {
  commit: string;
  files: string[];
}

export interface FileMetadata {
  etag: string;
  size: number;
  /** Where to GET the bytes (the CDN location for LFS files). */
  url: string;
  /** True when `url` is on the hub itself, which is the only host that may see the token. */
  sameOrigin: boolean;
  /** sha256 (LFS: X-Linked-Etag) or git sha1 (small files). */
  check: 'sha256' | 'git-sha1' | null;
}

export function authHeaders(client: HubClient): Record<string, string> {
  return client.token ? { Authorization: `Bearer ${client.token}` } : {};
}

export async function repoInfo(client: HubClient, repo: string, revision: string): Promise<RepoInfo> {
  const { HubApiError, modelInfo } = await hubPackage();
  try {
    const info = await modelInfo({
      name: repo,
      revision,
      hubUrl: client.endpoint,
      fetch: client.fetch,
      accessToken: client.token,
      additionalFields: ['sha', 'filePaths'],
    });
    if (typeof info.sha !== 'string' || !/^[0-9a-f]{40}$/.test(info.sha))
      throw new HubError(`${client.endpoint}: the info of ${repo} has no commit sha; is HF_ENDPOINT a Hugging Face hub?`, false);
    return { commit: info.sha, files: info.filePaths ?? [] };
  } catch (e) {
    if (e instanceof HubApiError) throw await apiProblem(client, repo, revision, e.statusCode, errorCodeOf(e));
    throw networkProblem(client, e);
  }
}

/** HEAD of resolve/<commit>/<file>, following the hub's own (relative) redirects but not the CDN's. */
export async function fileMetadata(client: HubClient, repo: string, commit: string, file: string): Promise<FileMetadata> {
  let url = `${client.endpoint}/${repo}/resolve/${commit}/${file.split('/').map(encodeURIComponent).join('/')}`;
  const hubOrigin = new URL(client.endpoint).origin;
  for (let hop = 0; ; hop++) {
    let res: Response;
    try {
      res = await client.fetch(url, { method: 'HEAD', headers: { ...authHeaders(client), 'Accept-Encoding': 'identity' }, redirect: 'manual' });
    } catch (e) {
      throw networkProblem(client, e);
    }
    const location = res.headers.get('location');
    const redirect = res.status >= 300 && res.status < 400 && location !== null;
    if (redirect && new URL(location, url).origin === hubOrigin && hop < 5) {
      url = new URL(location, url).href; // a renamed repo or a moved file: ask again
      continue;
    }
    if (!redirect && !res.ok) throw await apiProblem(client, repo, commit, res.status, res.headers.get('x-error-code'), file);
    const linkedEtag = res.headers.get('x-linked-etag');
    const etag = normalizeEtag(linkedEtag ?? res.headers.get('etag'));
    const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
    if (etag === null || !Number.isSafeInteger(size) || size < 0)
      throw new HubError(`${repo}/${file}: the hub's answer has no ETag or size (HTTP ${res.status}); is HF_ENDPOINT a Hugging Face hub?`, false);
    const target = redirect ? new URL(location, url).href : url;
    const check = /^[0-9a-f]{64}$/.test(etag) ? 'sha256' : linkedEtag === null && /^[0-9a-f]{40}$/.test(etag) ? 'git-sha1' : null;
    return { etag, size, url: target, sameOrigin: new URL(target).origin === hubOrigin, check };
  }
}

/** W/"abc" → abc */
function normalizeEtag(etag: string | null): string | null {
  if (etag === null) return null;
  const value = etag.replace(/^W\//, '').replace(/^"|"$/g, '');
  return /^[\w.-]+$/.test(value) ? value : null;
}

function errorCodeOf(e: { data?: unknown }): string | null {
  const data = e.data as { error?: unknown } | undefined;
  const text = typeof data?.error === 'string' ? data.error : '';
  if (/gated|restricted|access to model/i.test(text)) return 'GatedRepo';
  if (/rev id|revision/i.test(text)) return 'RevisionNotFound';
  return null;
}

async function apiProblem(client: HubClient, repo: string, revision: string, status: number, code: string | null, file?: string): Promise<HubError> {
  const where = `${client.endpoint}/${repo}`;
  if (code === 'GatedRepo' || status === 403)
    return new HubError(
      client.token
        ? `${repo} is gated and your token has no access: accept its terms at ${where} with the account of HF_TOKEN`
        : `${repo} is gated: accept its terms at ${where}, then set HF_TOKEN (or pass --hf-token) to a token of that account`,
      true,
    );
  if (status === 401 && client.token) return new HubError(`the hub refused the token in HF_TOKEN/--hf-token for ${repo} (HTTP 401): check that it is valid and can read ${repo}`, true);
  if (code === 'RevisionNotFound') return new HubError(`${repo} has no revision '${revision}' (a branch, tag or commit)`, true);
  if (code === 'EntryNotFound' && file) return new HubError(`${repo} has no file ${file} at ${revision}`, false);
  if (status === 401 || status === 404) {
    const similar = await searchModels(client, repo);
    const hint = similar.length > 0 ? `; models with a similar name: ${similar.join(', ')}` : '';
    const privateHint = client.token ? '' : ' (if it is private or gated, set HF_TOKEN or pass --hf-token)';
    return new HubError(`no model '${repo}' on ${client.endpoint}${privateHint}${hint}`, true);
  }
  return new HubError(`${where}: the hub answered HTTP ${status}${file ? ` for ${file}` : ''}; try again later`, false);
}

/**
 * Up to 8 model ids with a name like `repo`'s, most downloaded first: a search for the name, then for
 * shorter prefixes of it (Qwen3-0.6C → Qwen3-0 → Qwen3) until something matches; none when search fails.
 */
async function searchModels(client: HubClient, repo: string): Promise<string[]> {
  const name = repo.split('/')[1];
  const queries = [name];
  for (let cut = name.search(/[-_.][^-_.]*$/); cut > 0; cut = name.slice(0, cut).search(/[-_.][^-_.]*$/)) queries.push(name.slice(0, cut));
  try {
    const { listModels } = await hubPackage();
    for (const query of queries.slice(0, 3)) {
      const ids: string[] = [];
      for await (const m of listModels({ search: { query }, limit: 8, hubUrl: client.endpoint, fetch: client.fetch, accessToken: client.token, sort: 'downloads' }))
        ids.push(m.name);
      if (ids.length > 0) return ids;
    }
  } catch {
    // only a hint
  }
  return [];
}

function networkProblem(client: HubClient, e: unknown): Error {
  if (e instanceof HubError || (e as Error).name === 'AbortError') return e as Error;
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return new HubError(
    `cannot reach ${client.endpoint} (${cause?.code ?? cause?.message ?? (e as Error).message}); ` +
      'check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only models already in the cache',
    false,
  );
}
