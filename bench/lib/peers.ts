// The reference peers, each built as the same two hops as ward: client pod → hop in node a (plain in)
// → mutual TLS 1.3 over the underlay → hop in node b → server pod (plain out). Certificates come from
// the lab's development CA (the client hop presents the client's SVID, the server hop the server's);
// both sides verify the peer's chain against the trust bundle; one thread; no TLS session resumption.
import type { ChildProcess } from 'node:child_process';
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.ts';
import { WARD_MAIN } from '../../src/lab/ward-entry.ts';
import { hardNofile, sleep, startIn, waitFor } from './exec.ts';

export type PeerName = 'haproxy' | 'nginx' | 'stunnel';
export const PEERS: readonly PeerName[] = ['haproxy', 'nginx', 'stunnel'];

/** Backend ports in the server pod: iperf3, HTTP (615-byte body), lab-protocol echo. */
export const BACKEND = { iperf: 5201, http: 80, echo: 8080 } as const;
export type Service = keyof typeof BACKEND;
/** Where hop a listens (node a's underlay address) and hop b listens (node b's). */
const HOP_A_PORT: Record<Service, number> = { iperf: 15201, http: 10080, echo: 18080 };
const HOP_B_PORT: Record<Service, number> = { iperf: 25201, http: 20080, echo: 28080 };
const SERVICES = Object.keys(BACKEND) as Service[];
/** The name nginx checks on the server hop's certificate (nginx always checks a name when it verifies). */
export const NGINX_SERVER_NAME = 'hop-b.ward-bench.test';

const BINARY: Record<PeerName, string> = { haproxy: 'haproxy', nginx: 'nginx', stunnel: 'stunnel4' };

export function peerAvailable(p: PeerName): boolean {
  return spawnSync('sh', ['-c', `command -v ${BINARY[p]}`], { stdio: 'ignore' }).status === 0;
}

export function peerVersion(p: PeerName): string {
  try {
    const argv =
      p === 'haproxy' ? ['haproxy', '-v'] : p === 'nginx' ? ['nginx', '-v'] : ['stunnel4', '-version'];
    const r = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8' });
    const text = `${r.stdout}${r.stderr}`;
    const m =
      p === 'haproxy'
        ? /HAProxy version (\S+)/.exec(text)
        : p === 'nginx'
          ? /nginx\/(\S+)/.exec(text)
          : /stunnel (\d\S*)/.exec(text);
    return m?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export interface Certs {
  readonly bundle: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly clientPem: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly serverPem: string;
  /** The server SVID re-issued by the same CA with a DNS name added, for nginx's name check. */
  readonly nginxServerCert: string;
}

/** Issues the client and server SVIDs from the lab's CA (`ward ca issue`), plus nginx's variant. */
export function issueCerts(lab: Lab, dir: string): Certs {
  mkdirSync(dir, { recursive: true });
  const ids = lab.spiffeIds();
  const td = lab.options.mesh?.trustDomain ?? 'spiffe.cilium';
  const caDir = join(lab.dir, 'ca');
  for (const [name, pod] of [
    ['client', 'client'],
    ['server', 'server'],
  ] as const) {
    const id = ids.get(pod);
    if (id === undefined) throw new Error(`no SPIFFE ID for pod ${pod}`);
    execFileSync(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        WARD_MAIN,
        'ca',
        'issue',
        '--dir',
        caDir,
        '--id',
        id,
        '--out',
        dir,
        '--name',
        name,
        '--ttl',
        '12h',
      ],
      { stdio: 'ignore' },
    );
  }
  const p = (f: string): string => join(dir, f);
  for (const n of ['client', 'server']) {
    writeFileSync(
      p(`${n}.pem`),
      `${readFileSync(p(`${n}.svid.pem`), 'utf8')}${readFileSync(p(`${n}.key.pem`), 'utf8')}`,
    );
  }
  writeFileSync(
    p('nginx-ext.cnf'),
    `subjectAltName=URI:${ids.get('server')},DNS:${NGINX_SERVER_NAME}\nextendedKeyUsage=serverAuth,clientAuth\nkeyUsage=critical,digitalSignature,keyAgreement\n`,
  );
  execFileSync(
    'openssl',
    ['req', '-new', '-key', p('server.key.pem'), '-subj', '/O=ward bench', '-out', p('nginx.csr')],
    {
      stdio: 'ignore',
    },
  );
  execFileSync(
    'openssl',
    [
      'x509',
      '-req',
      '-in',
      p('nginx.csr'),
      '-CA',
      join(caDir, 'ca.pem'),
      '-CAkey',
      join(caDir, 'ca.key.pem'),
      '-CAcreateserial',
      '-days',
      '1',
      '-sha256',
      '-extfile',
      p('nginx-ext.cnf'),
      '-out',
      p('nginx-server.pem'),
    ],
    { stdio: 'ignore' },
  );
  return {
    bundle: p(`${td}.bundle.pem`),
    clientCert: p('client.svid.pem'),
    clientKey: p('client.key.pem'),
    clientPem: p('client.pem'),
    serverCert: p('server.svid.pem'),
    serverKey: p('server.key.pem'),
    serverPem: p('server.pem'),
    nginxServerCert: p('nginx-server.pem'),
  };
}

/** Proxied connections one hop can hold within the open-files limit (two descriptors each). */
export function maxConns(): number {
  return Math.floor((hardNofile() - 200) / 2);
}

interface Addrs {
  readonly a: string;
  readonly b: string;
  readonly server: string;
}

function haproxyConfig(hop: 'a' | 'b', ad: Addrs, c: Certs): string {
  // Two descriptors per proxied connection must fit under the hard open-files limit (HAProxy refuses
  // to start when it cannot raise its limit to what maxconn needs).
  const head = `global
  nbthread 1
  maxconn ${maxConns()}
  tune.ssl.cachesize 0
defaults
  mode tcp
  timeout connect 5s
  timeout client 1h
  timeout server 1h
`;
  return (
    head +
    SERVICES.map((s) =>
      hop === 'a'
        ? `listen ${s}
  bind ${ad.a}:${HOP_A_PORT[s]}
  server b ${ad.b}:${HOP_B_PORT[s]} ssl verify required ca-file ${c.bundle} crt ${c.clientPem} no-ssl-reuse ssl-min-ver TLSv1.3
`
        : `listen ${s}
  bind ${ad.b}:${HOP_B_PORT[s]} ssl crt ${c.serverPem} ca-file ${c.bundle} verify required ssl-min-ver TLSv1.3 no-tls-tickets
  server s ${ad.server}:${BACKEND[s]}
`,
    ).join('')
  );
}

function nginxConfig(hop: 'a' | 'b', ad: Addrs, c: Certs, dir: string): string {
  const tls =
    hop === 'a'
      ? `  proxy_ssl on;
  proxy_ssl_protocols TLSv1.3;
  proxy_ssl_certificate ${c.clientCert};
  proxy_ssl_certificate_key ${c.clientKey};
  proxy_ssl_trusted_certificate ${c.bundle};
  proxy_ssl_verify on;
  proxy_ssl_name ${NGINX_SERVER_NAME};
  proxy_ssl_session_reuse off;
`
      : `  ssl_protocols TLSv1.3;
  ssl_certificate ${c.nginxServerCert};
  ssl_certificate_key ${c.serverKey};
  ssl_client_certificate ${c.bundle};
  ssl_verify_client on;
  ssl_session_cache off;
  ssl_session_tickets off;
`;
  const servers = SERVICES.map((s) =>
    hop === 'a'
      ? `  server { listen ${ad.a}:${HOP_A_PORT[s]}; proxy_pass ${ad.b}:${HOP_B_PORT[s]}; }\n`
      : `  server { listen ${ad.b}:${HOP_B_PORT[s]} ssl; proxy_pass ${ad.server}:${BACKEND[s]}; }\n`,
  ).join('');
  return `load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile ${hardNofile()};
error_log ${join(dir, `nginx-${hop}.err`)} warn;
pid ${join(dir, `nginx-${hop}.pid`)};
events { worker_connections ${2 * maxConns()}; }
stream {
  proxy_timeout 1h;
${tls}${servers}}
`;
}

function stunnelConfig(hop: 'a' | 'b', ad: Addrs, c: Certs, dir: string): string {
  const head = `foreground = yes
pid =
syslog = no
debug = 3
output = ${join(dir, `stunnel-${hop}.log`)}
`;
  return (
    head +
    SERVICES.map((s) =>
      hop === 'a'
        ? `[${s}]
client = yes
accept = ${ad.a}:${HOP_A_PORT[s]}
connect = ${ad.b}:${HOP_B_PORT[s]}
cert = ${c.clientCert}
key = ${c.clientKey}
CAfile = ${c.bundle}
verifyChain = yes
sslVersion = TLSv1.3
sessionResume = no
`
        : `[${s}]
accept = ${ad.b}:${HOP_B_PORT[s]}
connect = ${ad.server}:${BACKEND[s]}
cert = ${c.serverCert}
key = ${c.serverKey}
CAfile = ${c.bundle}
verifyChain = yes
requireCert = yes
sslVersion = TLSv1.3
sessionResume = no
options = NO_TICKET
`,
    ).join('')
  );
}

export interface HopPair {
  readonly name: PeerName;
  /** The hop processes: [hop a, hop b]. */
  readonly pids: readonly number[];
  /** Where the client pod connects for each service. */
  target(s: Service): { host: string; port: number };
  stop(): Promise<void>;
}

function listening(ns: string, port: number): boolean {
  const r = spawnSync('ip', ['netns', 'exec', ns, 'ss', '-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim().length > 0;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts both hops of a peer in the lab's node namespaces and waits until every port listens. */
export async function startPeer(name: PeerName, lab: Lab, certs: Certs, dir: string): Promise<HopPair> {
  const a = lab.node('a');
  const b = lab.node('b');
  const ad: Addrs = { a: a.underlayIp, b: b.underlayIp, server: lab.pod('server').ip };
  const children: ChildProcess[] = [];
  for (const [hop, node] of [
    ['b', b],
    ['a', a],
  ] as const) {
    const cfgPath = join(dir, `${name}-${hop}.conf`);
    const text =
      name === 'haproxy'
        ? haproxyConfig(hop, ad, certs)
        : name === 'nginx'
          ? nginxConfig(hop, ad, certs, dir)
          : stunnelConfig(hop, ad, certs, dir);
    writeFileSync(cfgPath, text);
    const argv =
      name === 'haproxy'
        ? ['haproxy', '-db', '-f', cfgPath]
        : name === 'nginx'
          ? ['nginx', '-p', dir, '-e', join(dir, `nginx-${hop}.err`), '-c', cfgPath]
          : ['stunnel4', cfgPath];
    const err = openSync(join(dir, `${name}-${hop}.stderr`), 'a');
    children.push(startIn(node.ns, argv, ['ignore', err, err]));
    closeSync(err);
    const ports = hop === 'a' ? HOP_A_PORT : HOP_B_PORT;
    try {
      await waitFor(`${name} hop ${hop} listening`, () => {
        const c = children[children.length - 1];
        if (c !== undefined && c.exitCode !== null) {
          throw new Error(
            `${name} hop ${hop} exited: ${readFileSync(join(dir, `${name}-${hop}.stderr`), 'utf8')}`,
          );
        }
        return SERVICES.every((s) => listening(node.ns, ports[s]));
      });
    } catch (e) {
      await Promise.all(children.map(stopChild));
      throw e;
    }
  }
  await sleep(200);
  const [hb, ha] = children;
  return {
    name,
    pids: [ha?.pid ?? -1, hb?.pid ?? -1],
    target: (s) => ({ host: ad.a, port: HOP_A_PORT[s] }),
    stop: async () => {
      await Promise.all(children.map(stopChild));
    },
  };
}
