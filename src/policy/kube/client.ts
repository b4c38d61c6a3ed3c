// A minimal Kubernetes API client over undici: in-cluster service-account credentials or a kubeconfig.
// Only GETs of lists and watches: that is all ward needs (see resources.ts).
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Agent, type Dispatcher } from 'undici';
import { parse } from 'yaml';
import { PolicyError } from '../errors.ts';

export interface KubeConnection {
  /** `https://host:port` (or http:// for tests). */
  readonly server: string;
  readonly dispatcher: Dispatcher;
  /** Authorization header value, read fresh for each request (bound tokens rotate). */
  authorization(): string | undefined;
}

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface ConnectOptions {
  readonly auth: 'in-cluster' | 'kubeconfig';
  readonly kubeconfig?: string | undefined;
  readonly context?: string | undefined;
  /** Body timeout of a watch (ms): longer than the server-side watch timeout. */
  readonly bodyTimeout?: number;
}

export function connectKube(opts: ConnectOptions): KubeConnection {
  return opts.auth === 'in-cluster' ? inCluster(opts) : fromKubeconfig(opts);
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new PolicyError('POL_KUBE_API', `cannot read ${what} ${path}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function inCluster(opts: ConnectOptions): KubeConnection {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  if (host === undefined || host === '') {
    throw new PolicyError(
      'POL_KUBE_API',
      'KUBERNETES_SERVICE_HOST is not set: not running in a pod (use kubernetes.auth: kubeconfig)',
    );
  }
  const ca = readText(join(SA_DIR, 'ca.crt'), 'the service-account CA');
  readText(join(SA_DIR, 'token'), 'the service-account token');
  const server = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  return {
    server,
    dispatcher: new Agent({ connect: { ca }, bodyTimeout: opts.bodyTimeout ?? 360_000 }),
    authorization: () => `Bearer ${readFileSync(join(SA_DIR, 'token'), 'utf8').trim()}`,
  };
}

interface Kubeconfig {
  'current-context'?: string;
  contexts?: { name: string; context: { cluster: string; user: string } }[];
  clusters?: {
    name: string;
    cluster: {
      server: string;
      'certificate-authority'?: string;
      'certificate-authority-data'?: string;
      'insecure-skip-tls-verify'?: boolean;
    };
  }[];
  users?: {
    name: string;
    user: {
      token?: string;
      tokenFile?: string;
      'client-certificate'?: string;
      'client-certificate-data'?: string;
      'client-key'?: string;
      'client-key-data'?: string;
      exec?: unknown;
    };
  }[];
}

function fromKubeconfig(opts: ConnectOptions): KubeConnection {
  const path = opts.kubeconfig ?? process.env.KUBECONFIG?.split(':')[0] ?? join(homedir(), '.kube', 'config');
  const cfg = parse(readText(path, 'the kubeconfig')) as Kubeconfig;
  const ctxName = opts.context ?? cfg['current-context'];
  const ctx = cfg.contexts?.find((c) => c.name === ctxName)?.context;
  if (ctx === undefined)
    throw new PolicyError('POL_KUBE_API', `${path}: context ${JSON.stringify(ctxName)} not found`);
  const cluster = cfg.clusters?.find((c) => c.name === ctx.cluster)?.cluster;
  const user = cfg.users?.find((u) => u.name === ctx.user)?.user ?? {};
  if (cluster === undefined)
    throw new PolicyError('POL_KUBE_API', `${path}: cluster ${ctx.cluster} not found`);
  if (user.exec !== undefined) {
    throw new PolicyError(
      'POL_KUBE_API',
      `${path}: exec credential plugins are not supported; use a token or client certificate`,
    );
  }
  const b64 = (v: string) => Buffer.from(v, 'base64').toString('utf8');
  const ca =
    cluster['certificate-authority-data'] !== undefined
      ? b64(cluster['certificate-authority-data'])
      : cluster['certificate-authority'] !== undefined
        ? readText(cluster['certificate-authority'], 'the cluster CA')
        : undefined;
  const cert =
    user['client-certificate-data'] !== undefined
      ? b64(user['client-certificate-data'])
      : user['client-certificate'] !== undefined
        ? readText(user['client-certificate'], 'the client certificate')
        : undefined;
  const key =
    user['client-key-data'] !== undefined
      ? b64(user['client-key-data'])
      : user['client-key'] !== undefined
        ? readText(user['client-key'], 'the client key')
        : undefined;
  const connect: Record<string, unknown> = {};
  if (ca !== undefined) connect.ca = ca;
  if (cert !== undefined) connect.cert = cert;
  if (key !== undefined) connect.key = key;
  if (cluster['insecure-skip-tls-verify'] === true) connect.rejectUnauthorized = false;
  const tokenFile = user.tokenFile;
  return {
    server: cluster.server.replace(/\/+$/, ''),
    dispatcher: new Agent({ connect, bodyTimeout: opts.bodyTimeout ?? 360_000 }),
    authorization: () => {
      if (user.token !== undefined) return `Bearer ${user.token}`;
      if (tokenFile !== undefined) return `Bearer ${readFileSync(tokenFile, 'utf8').trim()}`;
      return undefined;
    },
  };
}
