// A fleet on loopback for tests and the soak bench: `paralon serve` replicas as child processes sharing
// one PostgreSQL, and nginx running deploy/nginx/nginx.conf with the replicas' ports substituted (and
// pid, log and temp paths moved into a temp directory). Everything listens on 127.0.0.1.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from './fixture.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NGINX = process.env.PARALON_NGINX ?? '/usr/sbin/nginx';

/** Why nginx tests cannot run here, or null. Throws under CI=true, where nginx must be installed. */
export function nginxUnavailable(): string | null {
  if (existsSync(NGINX)) return null;
  const reason = `nginx missing at ${NGINX}: apt-get install nginx`;
  if (process.env.CI === 'true') throw new Error(`${reason} (CI=true: the fleet tests must run)`);
  console.warn(`skipping the fleet tests: ${reason}`);
  return reason;
}

/** Runs `paralon` (the CLI, through tsx) to completion. */
export function paralonCli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

export interface ReplicaOptions {
  databaseUrl: string;
  modelDir: string;
  modelId: string;
  replicaId: string;
  /** Seconds without a heartbeat after which a replica's running rows become interrupted. */
  replicaTimeout: number;
  extraArgs?: string[];
}

export class Replica {
  process: ChildProcess | null = null;
  port = 0;
  #stderr = '';

  constructor(readonly options: ReplicaOptions) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts (or restarts, on the same port) and waits until /health says ok. */
  async start(): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const o = this.options;
    const args = ['--import', 'tsx', 'src/cli.ts', 'serve', '--database', o.databaseUrl, '--model', o.modelDir, '--served-model-name', o.modelId];
    args.push('--replica-id', o.replicaId, '--replica-timeout', String(o.replicaTimeout), '--port', String(this.port), '--device', 'cpu');
    args.push('--threads', '1', '--max-model-len', '1024', '--kv-cache-memory', '64MiB', '--max-num-seqs', '32', '--max-num-batched-tokens', '512');
    args.push('--shutdown-grace', '30', ...(o.extraArgs ?? []));
    this.#stderr = '';
    const child = spawn(process.execPath, args, { cwd: ROOT, env: process.env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => (this.#stderr = (this.#stderr + d.toString()).slice(-4000)));
    this.process = child;
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`replica ${o.replicaId} exited ${child.exitCode}: ${this.#stderr}`);
      const ok = await fetch(`${this.url}/health`).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`replica ${o.replicaId} not healthy in 60 s: ${this.#stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** SIGTERM: drains in-flight requests, then exits; resolves with the exit code. */
  async stop(): Promise<number | null> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    return exited;
  }

  /** kill -9: no drain, no usage rows completed. */
  async kill9(): Promise<void> {
    const child = this.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  async metrics(): Promise<string> {
    return (await fetch(`${this.url}/metrics`)).text();
  }
}

/** The value of an unlabelled metric (or the sum over its labelled series) in a /metrics text. */
export function metricValue(text: string, name: string, labels?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name && (labels === undefined || (m[2] ?? '').includes(labels))) sum += Number(m[3]);
  }
  return sum;
}

/** deploy/nginx/nginx.conf for these upstream ports, listening on `listenPort`, with private paths. */
export function nginxConfig(upstreamPorts: number[], listenPort: number, dir: string): string {
  const shipped = readFileSync(path.join(ROOT, 'deploy/nginx/nginx.conf'), 'utf8');
  const replace = (text: string, pattern: RegExp, by: string) => {
    if (!pattern.test(text)) throw new Error(`deploy/nginx/nginx.conf no longer has ${pattern}`);
    return text.replace(pattern, by);
  };
  let conf = shipped;
  const servers = /^(\s*)server replica-1:8000 (.*);\n\s*server replica-2:8000 .*;\n/m;
  const m = servers.exec(conf);
  if (!m) throw new Error('deploy/nginx/nginx.conf no longer lists replica-1 and replica-2');
  conf = conf.replace(servers, upstreamPorts.map((p) => `${m[1]}server 127.0.0.1:${p} ${m[2]};\n`).join(''));
  conf = replace(conf, /listen 8080;/, `listen 127.0.0.1:${listenPort};`);
  conf = replace(conf, /include \/etc\/nginx\/paralon-locations\.conf;/, `include ${path.join(ROOT, 'deploy/nginx/paralon-locations.conf')};`);
  conf = replace(conf, /worker_processes auto;/, 'worker_processes 1;');
  conf = replace(conf, /access_log \/dev\/stdout;/, 'access_log off;');
  conf = replace(conf, /error_log \/dev\/stderr warn;/, `error_log ${dir}/error.log warn;`);
  const temps = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `    ${t}_temp_path ${dir}/${t};`).join('\n');
  conf = replace(conf, /http \{\n/, `http {\n${temps}\n`);
  // As root, workers would switch to `nobody`, who cannot write the temp directory.
  const user = process.getuid?.() === 0 ? 'user root;\n' : '';
  return `${user}pid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\n${conf}`;
}

export interface Nginx {
  url: string;
  stop(): Promise<void>;
}

export async function startNginx(upstreamPorts: number[]): Promise<Nginx> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'paralon-nginx-'));
  mkdirSync(path.join(dir, 'logs'));
  const port = await freePort();
  const confFile = path.join(dir, 'nginx.conf');
  writeFileSync(confFile, nginxConfig(upstreamPorts, port, dir));
  const test = spawnSync(NGINX, ['-t', '-p', dir, '-c', confFile], { encoding: 'utf8' });
  if (test.status !== 0) throw new Error(`nginx -t failed: ${test.stderr}`);
  const child = spawn(NGINX, ['-p', dir, '-c', confFile, '-g', 'daemon off;'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 10_000;
  while (!(await fetch(`${url}/health`).then(() => true, () => false))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`nginx did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGTERM'); // fast shutdown: open streams are cut
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
