// The lab: a VM pair (or a few more nodes) built out of network namespaces, usable from tests,
// benchmarks, the demo and the CLI.
//
//   ward-<lab>-a  (node, 198.18.0.1 on eth0)  ── underlay ──  ward-<lab>-b  (node, 198.18.0.2)
//     lxc0 ── ward-<lab>-a-<pod> (198.19.1.10)                  lxc0 ── ward-<lab>-b-<pod> (198.19.2.10)
//
// Two nodes are joined by one veth pair; three or more by a bridge in a switch namespace (ward-<lab>-sw).
// Pods get a /32 on eth0 and a default route via 169.254.1.1, which every lxc interface of the node
// carries (the Calico/Cilium shape); the node routes each pod IP to its lxc interface and the other
// node's pod CIDR over the underlay. Addresses come from 198.18.0.0/15 (RFC 2544 benchmarking), so
// nothing the lab sends could ever be meant for a real network. A ward runs in each node namespace.
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import YAML from 'yaml';
import { buildInventory, spiffeIdFor, type WorkloadInput } from '../inventory/index.ts';
import {
  addNamespace,
  deleteNamespace,
  execIn,
  ipIn,
  LabError,
  listNamespaces,
  run,
  sysctlIn,
} from './netns.ts';
import { ensureBuilt, WARD_MAIN } from './ward-entry.ts';

export const LAB_PREFIX = 'ward-';
const GATEWAY = '169.254.1.1';

export interface LabNodeSpec {
  readonly name: string;
  readonly pods: readonly string[];
  /** Start a ward in this node (default true). A node without ward is a mesh's plaintext node. */
  readonly ward?: boolean;
}

/** Identities and policy for the lab's wards: a development CA, an inventory file, a policy directory. */
export interface LabMesh {
  readonly trustDomain?: string;
  /** Labels (and namespace, service account) per pod; default `{ app: <pod name> }` in `default`. */
  readonly workloads?: Readonly<
    Record<string, { labels: Record<string, string>; namespace?: string; serviceAccount?: string }>
  >;
  /** Policy manifests (file name → YAML) for the wards' policy directory; omitted: no policy source. */
  readonly policies?: Readonly<Record<string, string>>;
  /** SVID lifetime the CA issues (default 1h). */
  readonly svidTtl?: string;
}

export interface LabOptions {
  /** Short name; namespaces are ward-<name>-<node>[-<pod>]. Letters and digits, at most 12. */
  readonly name: string;
  readonly nodes?: readonly LabNodeSpec[];
  /** Where configs, logs and the state file go (default: $TMPDIR/ward-lab-<name>). */
  readonly dir?: string;
  /** Merged into every ward's config (YAML object). */
  readonly wardConfig?: Record<string, unknown>;
  /** Start the wards now (default true). */
  readonly startWards?: boolean;
  /** Leave ward processes running when this process exits (the CLI's `lab up`). */
  readonly detached?: boolean;
  /** A development CA, inventory and policies for the wards (mTLS between nodes). */
  readonly mesh?: LabMesh;
}

export const DEFAULT_NODES: readonly LabNodeSpec[] = [
  { name: 'a', pods: ['client'] },
  { name: 'b', pods: ['server'] },
];

export interface LabState {
  readonly name: string;
  readonly dir: string;
  readonly namespaces: string[];
  readonly wards: { node: string; pid: number }[];
  readonly ca?: { pid: number } | undefined;
}

/** One JSON log line of a ward. */
export type LogLine = Record<string, unknown> & { msg?: string; component?: string };

function merge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] =
      typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      typeof b === 'object' &&
      b !== null &&
      !Array.isArray(b)
        ? merge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export class WardProcess {
  readonly node: LabNode;
  readonly logPath: string;
  readonly errPath: string;
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  #exitCode: number | null | undefined = undefined;

  constructor(node: LabNode, child: ChildProcess, logPath: string, errPath: string) {
    this.node = node;
    this.child = child;
    this.logPath = logPath;
    this.errPath = errPath;
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.#exitCode = code ?? (signal !== null ? -1 : null);
        resolveExit(this.#exitCode);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.#exitCode === undefined;
  }

  lines(): LogLine[] {
    if (!existsSync(this.logPath)) return [];
    const out: LogLine[] = [];
    for (const line of readFileSync(this.logPath, 'utf8').split('\n')) {
      if (line.trim() === '') continue;
      try {
        out.push(JSON.parse(line) as LogLine);
      } catch {
        out.push({ msg: line, unparsed: true });
      }
    }
    return out;
  }

  /** The access-log lines: one per connection. */
  accessLog(): LogLine[] {
    return this.lines().filter((l) => l.component === 'access');
  }

  stderr(): string {
    return existsSync(this.errPath) ? readFileSync(this.errPath, 'utf8') : '';
  }

  /** Resolves once ward logs "ward ready"; rejects if it exits first or the timeout passes. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    await this.waitForLine((l) => l.msg === 'ward ready', timeoutMs, 'ward ready');
  }

  async waitForLine(
    pred: (l: LogLine) => boolean,
    timeoutMs: number,
    what: string,
    after = 0,
  ): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines().slice(after).find(pred);
      if (found !== undefined) return found;
      if (!this.running) {
        throw new LabError(
          `ward on node ${this.node.name} exited (${String(this.#exitCode)}) before "${what}":\n${this.stderr()}`,
        );
      }
      if (Date.now() > deadline)
        throw new LabError(`ward on node ${this.node.name}: no "${what}" within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Sends a signal and waits for the exit code (SIGKILL after the timeout). */
  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000): Promise<number | null> {
    if (!this.running) return this.#exitCode ?? null;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

export class LabPod {
  readonly name: string;
  readonly node: LabNode;
  readonly ns: string;
  readonly ip: string;
  readonly iface: string;

  constructor(node: LabNode, name: string, ip: string, iface: string) {
    this.node = node;
    this.name = name;
    this.ns = `${node.ns}-${name}`;
    this.ip = ip;
    this.iface = iface;
  }

  exec(argv: readonly string[], input?: string): string {
    return execIn(this.ns, argv, input);
  }

  spawn(argv: readonly string[], opts: { stdio?: 'pipe' | 'ignore' } = {}): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.ns, ...argv], { stdio: opts.stdio ?? 'pipe' });
  }
}

export class LabNode {
  readonly lab: Lab;
  readonly name: string;
  readonly index: number;
  readonly ns: string;
  readonly underlayIp: string;
  readonly podCidr: string;
  readonly pods: LabPod[] = [];
  readonly wantsWard: boolean;
  ward: WardProcess | null = null;
  #starts = 0;

  constructor(lab: Lab, spec: LabNodeSpec, index: number) {
    this.lab = lab;
    this.name = spec.name;
    this.index = index;
    this.ns = `${LAB_PREFIX}${lab.name}-${spec.name}`;
    this.underlayIp = `198.18.0.${index + 1}`;
    this.podCidr = `198.19.${index + 1}.0/24`;
    this.wantsWard = spec.ward ?? true;
  }

  get configPath(): string {
    return join(this.lab.dir, `${this.name}.yaml`);
  }

  /** The ward config for this node: the lab's defaults, then the lab's overrides, then these. */
  wardConfig(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const base: Record<string, unknown> = {
      node: { name: this.name },
      capture: { podCidrs: [this.podCidr] },
      proxy: { workers: 1 },
      shutdown: { drainTimeout: '5s' },
      // Flow records as log lines too (ward's default keeps them in the ring only): the demo and the
      // tests read them from the log.
      log: { flows: true },
    };
    const mesh = this.lab.options.mesh;
    if (mesh !== undefined) {
      base.svid = {
        source: 'delegated',
        delegatedSocket: this.lab.caSocket,
        trustDomain: mesh.trustDomain ?? 'spiffe.cilium',
      };
      base.inventory = { source: 'file', file: this.lab.inventoryPath };
      if (mesh.policies !== undefined)
        base.policy = { source: 'files', directory: this.lab.policyDir, debounce: '100ms' };
      base.mesh = { plaintextNodes: this.lab.nodes.filter((n) => !n.wantsWard).map((n) => n.name) };
    }
    return merge(merge(base, this.lab.options.wardConfig ?? {}), extra);
  }

  async startWard(extra: Record<string, unknown> = {}, opts: { wait?: boolean } = {}): Promise<WardProcess> {
    if (this.ward?.running === true) throw new LabError(`ward on node ${this.name} is already running`);
    writeFileSync(this.configPath, YAML.stringify(this.wardConfig(extra)));
    this.#starts++;
    const logPath = join(this.lab.dir, `${this.name}-ward-${this.#starts}.log`);
    const errPath = join(this.lab.dir, `${this.name}-ward-${this.#starts}.err`);
    const out = openSync(logPath, 'a');
    const err = openSync(errPath, 'a');
    const child = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.ns,
        process.execPath,
        '--disable-warning=ExperimentalWarning',
        WARD_MAIN,
        'run',
        '--config',
        this.configPath,
      ],
      { stdio: ['ignore', out, err], detached: this.lab.options.detached === true },
    );
    closeSync(out);
    closeSync(err);
    if (this.lab.options.detached === true) child.unref();
    const ward = new WardProcess(this, child, logPath, errPath);
    this.ward = ward;
    if (opts.wait !== false) await ward.waitReady();
    return ward;
  }

  exec(argv: readonly string[], input?: string): string {
    return execIn(this.ns, argv, input);
  }

  /** iptables-save of the node's mangle table plus its ip rules: what ward installed, as text. */
  ruleset(): string {
    return `${execIn(this.ns, ['iptables-save', '-t', 'mangle'])}${ipIn(this.ns, 'rule', 'show')}`;
  }
}

export class Lab {
  readonly name: string;
  readonly dir: string;
  readonly options: LabOptions;
  readonly nodes: LabNode[];
  ca: ChildProcess | null = null;

  private constructor(options: LabOptions) {
    if (!/^[a-z][a-z0-9]{0,11}$/.test(options.name)) {
      throw new LabError(
        `lab name must be 1-12 lower-case letters or digits, starting with a letter: ${options.name}`,
      );
    }
    this.options = options;
    this.name = options.name;
    this.dir = options.dir ?? join(tmpdir(), `ward-lab-${options.name}`);
    this.nodes = (options.nodes ?? DEFAULT_NODES).map((spec, i) => new LabNode(this, spec, i));
    let podIndex = 0;
    for (const [i, node] of this.nodes.entries()) {
      const spec = (options.nodes ?? DEFAULT_NODES)[i];
      for (const [j, pod] of (spec?.pods ?? []).entries()) {
        node.pods.push(new LabPod(node, pod, `198.19.${i + 1}.${10 + j}`, `lxc${j}`));
        podIndex++;
      }
    }
    if (podIndex > 200) throw new LabError('at most 200 pods per lab');
    if (this.nodes.length > 9) throw new LabError('at most 9 nodes per lab');
  }

  get caSocket(): string {
    return join(this.dir, 'ca.sock');
  }

  /**
   * In a directory of its own: the file source watches the file's directory, and the wards' logs, which
   * grow by a line per connection, live in the lab's directory.
   */
  get inventoryPath(): string {
    return join(this.dir, 'inventory', 'inventory.yaml');
  }

  get policyDir(): string {
    return join(this.dir, 'policies');
  }

  get switchNs(): string {
    return `${LAB_PREFIX}${this.name}-sw`;
  }

  /** Builds the namespaces (after removing leftovers of a lab with the same name) and starts the wards. */
  static async create(options: LabOptions): Promise<Lab> {
    ensureBuilt();
    const lab = new Lab(options);
    Lab.destroyByName(lab.name, lab.dir);
    mkdirSync(lab.dir, { recursive: true });
    try {
      lab.#build();
      if (options.mesh !== undefined) await lab.#startMesh(options.mesh);
      lab.#saveState();
      if (options.startWards !== false) {
        await Promise.all(lab.nodes.filter((n) => n.wantsWard).map((n) => n.startWard()));
        lab.#saveState();
      }
    } catch (err) {
      await lab.destroy();
      throw err;
    }
    return lab;
  }

  #build(): void {
    for (const node of this.nodes) {
      addNamespace(node.ns);
      for (const [key, value] of [
        ['net.ipv4.ip_forward', 1],
        ['net.ipv4.conf.all.rp_filter', 0],
        ['net.ipv4.conf.default.rp_filter', 0],
      ] as const) {
        sysctlIn(node.ns, key, value);
      }
    }
    const [first, second] = this.nodes;
    if (this.nodes.length === 2 && first !== undefined && second !== undefined) {
      ipIn(first.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', second.ns);
    } else if (this.nodes.length > 2) {
      addNamespace(this.switchNs);
      ipIn(this.switchNs, 'link', 'add', 'br0', 'type', 'bridge');
      ipIn(this.switchNs, 'link', 'set', 'br0', 'up');
      for (const node of this.nodes) {
        const port = `p${node.index}`;
        ipIn(this.switchNs, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.ns);
        ipIn(this.switchNs, 'link', 'set', port, 'master', 'br0');
        ipIn(this.switchNs, 'link', 'set', port, 'up');
      }
    }
    if (this.nodes.length >= 2) {
      for (const node of this.nodes) {
        ipIn(node.ns, 'addr', 'add', `${node.underlayIp}/24`, 'dev', 'eth0');
        ipIn(node.ns, 'link', 'set', 'eth0', 'up');
        for (const other of this.nodes) {
          if (other !== node) ipIn(node.ns, 'route', 'add', other.podCidr, 'via', other.underlayIp);
        }
      }
    }
    for (const node of this.nodes) {
      for (const pod of node.pods) {
        addNamespace(pod.ns);
        ipIn(node.ns, 'link', 'add', pod.iface, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod.ns);
        ipIn(node.ns, 'addr', 'add', `${GATEWAY}/32`, 'dev', pod.iface);
        ipIn(node.ns, 'link', 'set', pod.iface, 'up');
        ipIn(node.ns, 'route', 'add', `${pod.ip}/32`, 'dev', pod.iface);
        sysctlIn(node.ns, `net.ipv4.conf.${pod.iface}.rp_filter`, 0);
        ipIn(pod.ns, 'addr', 'add', `${pod.ip}/32`, 'dev', 'eth0');
        ipIn(pod.ns, 'link', 'set', 'eth0', 'up');
        ipIn(pod.ns, 'route', 'add', GATEWAY, 'dev', 'eth0', 'scope', 'link');
        ipIn(pod.ns, 'route', 'add', 'default', 'via', GATEWAY, 'dev', 'eth0', 'src', pod.ip);
      }
    }
  }

  node(name: string): LabNode {
    const n = this.nodes.find((x) => x.name === name);
    if (n === undefined) throw new LabError(`no node ${name} in lab ${this.name}`);
    return n;
  }

  pod(name: string): LabPod {
    for (const n of this.nodes) {
      const p = n.pods.find((x) => x.name === name);
      if (p !== undefined) return p;
    }
    throw new LabError(`no pod ${name} in lab ${this.name}`);
  }

  get namespaces(): string[] {
    const all = this.nodes.flatMap((n) => [n.ns, ...n.pods.map((p) => p.ns)]);
    return this.nodes.length > 2 ? [...all, this.switchNs] : all;
  }

  /** The inventory the wards read: every pod with its node, labels and address. */
  inventory(): { cluster: string; workloads: Record<string, unknown>[] } {
    const spec = this.options.mesh?.workloads ?? {};
    return {
      cluster: 'default',
      workloads: this.nodes.flatMap((n) =>
        n.pods.map((p) => {
          const w = spec[p.name];
          return {
            name: p.name,
            namespace: w?.namespace ?? 'default',
            labels: w?.labels ?? { app: p.name },
            serviceAccount: w?.serviceAccount ?? 'default',
            node: n.name,
            ips: [p.ip],
          };
        }),
      ),
    };
  }

  /** Writes the policy directory whole (each file renamed into place, so no half-written file is read). */
  setPolicies(files: Readonly<Record<string, string>>): void {
    mkdirSync(this.policyDir, { recursive: true });
    for (const f of readdirSync(this.policyDir)) {
      if (!(f in files)) rmSync(join(this.policyDir, f), { force: true });
    }
    for (const [name, text] of Object.entries(files)) {
      const tmp = join(this.dir, `.${name}.tmp`);
      writeFileSync(tmp, text);
      renameSync(tmp, join(this.policyDir, name));
    }
  }

  /** The SPIFFE IDs of the lab's workloads, as the wards will derive them from the inventory. */
  spiffeIds(): Map<string, string> {
    const inv = buildInventory({ workloads: this.inventory().workloads as unknown as WorkloadInput[] });
    const td = this.options.mesh?.trustDomain ?? 'spiffe.cilium';
    const out = new Map<string, string>();
    for (const w of inv.workloads()) out.set(w.name, spiffeIdFor(w, 'identity', td));
    return out;
  }

  async #startMesh(mesh: LabMesh): Promise<void> {
    mkdirSync(dirname(this.inventoryPath), { recursive: true });
    writeFileSync(this.inventoryPath, YAML.stringify(this.inventory()));
    if (mesh.policies !== undefined) this.setPolicies(mesh.policies);
    const ids = [...new Set(this.spiffeIds().values())];
    writeFileSync(
      join(this.dir, 'identities.yaml'),
      YAML.stringify({ identities: ids.map((id) => ({ id, selectors: ['cilium:mutual-auth'] })) }),
    );
    const caDir = join(this.dir, 'ca');
    run([
      process.execPath,
      '--disable-warning=ExperimentalWarning',
      WARD_MAIN,
      'ca',
      'init',
      '--dir',
      caDir,
      '--trust-domain',
      mesh.trustDomain ?? 'spiffe.cilium',
    ]);
    await this.startCa();
  }

  /** Starts the development CA on the lab's socket (again, after stopCa()). */
  async startCa(): Promise<void> {
    const mesh = this.options.mesh;
    if (mesh === undefined) throw new LabError('this lab has no mesh');
    rmSync(this.caSocket, { force: true });
    const log = openSync(join(this.dir, 'ca.log'), 'a');
    const child = spawn(
      process.execPath,
      [
        '--disable-warning=ExperimentalWarning',
        WARD_MAIN,
        'ca',
        'serve',
        '--dir',
        join(this.dir, 'ca'),
        '--socket',
        this.caSocket,
        '--identities',
        join(this.dir, 'identities.yaml'),
        '--ttl',
        mesh.svidTtl ?? '1h',
      ],
      { stdio: ['ignore', log, log], detached: this.options.detached === true },
    );
    closeSync(log);
    if (this.options.detached === true) child.unref();
    this.ca = child;
    const deadline = Date.now() + 15_000;
    while (!existsSync(this.caSocket)) {
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new LabError(
          `the development CA did not start: ${readFileSync(join(this.dir, 'ca.log'), 'utf8')}`,
        );
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async stopCa(): Promise<void> {
    const ca = this.ca;
    this.ca = null;
    if (ca === null || ca.exitCode !== null) return;
    const exited = new Promise((r) => ca.once('exit', r));
    ca.kill('SIGTERM');
    await exited;
  }

  #saveState(): void {
    const state: LabState = {
      name: this.name,
      dir: this.dir,
      namespaces: this.namespaces,
      wards: this.nodes.flatMap((n) => (n.ward?.running === true ? [{ node: n.name, pid: n.ward.pid }] : [])),
      ca: this.ca?.pid === undefined ? undefined : { pid: this.ca.pid },
    };
    writeFileSync(join(this.dir, 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
  }

  /** Stops the wards (SIGTERM, so they remove their rules) and deletes every namespace. */
  async destroy(opts: { keepDir?: boolean } = {}): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.ward?.stop('SIGTERM', 10_000)));
    await this.stopCa();
    for (const ns of this.namespaces) deleteNamespace(ns);
    Lab.destroyByName(this.name, opts.keepDir === true ? undefined : this.dir);
  }

  /** Removes a lab's leftovers by name prefix, also those of a crashed run: processes, namespaces, files. */
  static destroyByName(name: string, dir?: string): string[] {
    const stateDir = dir ?? join(tmpdir(), `ward-lab-${name}`);
    const statePath = join(stateDir, 'state.json');
    if (existsSync(statePath)) {
      try {
        const state = JSON.parse(readFileSync(statePath, 'utf8')) as LabState;
        for (const pid of [
          ...state.wards.map((w) => w.pid),
          ...(state.ca === undefined ? [] : [state.ca.pid]),
        ]) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // Gone already.
          }
        }
      } catch {
        // A damaged state file: the namespace sweep below still cleans up.
      }
    }
    const prefix = `${LAB_PREFIX}${name}-`;
    const gone = listNamespaces().filter((ns) => ns.startsWith(prefix));
    // Pods first, then nodes, so no veth outlives its peer for long.
    for (const ns of gone.sort((a, b) => b.length - a.length)) deleteNamespace(ns);
    if (dir !== undefined) rmSync(stateDir, { recursive: true, force: true });
    return gone;
  }

  /** Every namespace of every lab (ward-*), for `ward lab down --all`. */
  static destroyAll(): string[] {
    const gone = listNamespaces().filter((ns) => ns.startsWith(LAB_PREFIX));
    for (const ns of gone.sort((a, b) => b.length - a.length)) deleteNamespace(ns);
    return gone;
  }
}

export { run };
