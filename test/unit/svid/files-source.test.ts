// The files source: a watched directory; rename-over picked up; half-written or mismatched files ignored
// (the last good SVID kept) until valid.
import { copyFileSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { certificateParses, derToPem } from '../../../src/svid/certificate.ts';
import { type DevCa, initCaDir } from '../../../src/svid/dev-ca.ts';
import { FilesSource } from '../../../src/svid/files-source.ts';
import { tempDir, testLogger, until } from './helpers.ts';

const TD = 'spiffe.cilium';
const A = `spiffe://${TD}/identity/4001`;
const B = `spiffe://${TD}/identity/4002`;

let tmp: ReturnType<typeof tempDir>;
let ca: DevCa;
let fed: DevCa;
let dir: string;
let src: FilesSource | undefined;

async function pems(id: string): Promise<{ cert: string; key: string; serial: string }> {
  const s = await ca.issue(id);
  return {
    cert: s.chain.map((d) => derToPem(d)).join(''),
    key: derToPem(s.key, 'PRIVATE KEY'),
    serial: s.serial,
  };
}

function atomicWrite(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

beforeEach(async () => {
  tmp = tempDir();
  ca = await initCaDir(join(tmp.dir, 'ca'), TD);
  fed = await initCaDir(join(tmp.dir, 'fed'), 'other.test');
  dir = join(tmp.dir, 'svids');
  mkdirSync(dir);
});

afterEach(async () => {
  try {
    await src?.close();
  } finally {
    src = undefined;
    tmp.cleanup();
  }
});

describe('files source', () => {
  it('loads SVIDs and bundles (PEM and SPIFFE JSON), then follows an atomic rename-over', async () => {
    const a = await pems(A);
    writeFileSync(join(dir, 'a.svid.pem'), a.cert);
    writeFileSync(join(dir, 'a.key.pem'), a.key);
    copyFileSync(join(tmp.dir, 'ca', 'ca.pem'), join(dir, `${TD}.bundle.pem`));
    copyFileSync(join(tmp.dir, 'fed', 'bundle.json'), join(dir, 'other.test.bundle.json'));
    src = new FilesSource({ directory: dir, log: testLogger().log, pollIntervalMs: 60_000, debounceMs: 20 });
    src.start();
    const first = await until(() => src?.current());
    expect(first.svids.map((s) => [s.spiffeId, s.serial])).toEqual([[A, a.serial]]);
    expect([...first.bundles.keys()].sort()).toEqual(['other.test', TD]);
    expect(first.bundles.get('other.test')?.authorities[0]?.der.equals(fed.certificate.der)).toBe(true);
    expect(src.state()).toBe('Available');
    // Rotation as one file holding cert + key, renamed over the old chain; the old key file removed.
    const b = await pems(A);
    atomicWrite(join(dir, 'a.svid.pem'), b.cert + b.key);
    renameSync(join(dir, 'a.key.pem'), join(tmp.dir, 'old.key'));
    await until(() => src?.current()?.svids[0]?.serial === b.serial, 3000, 'rotation picked up');
  });

  it('ignores a half-written file and a key that does not match yet, keeping the last good SVID', async () => {
    const { log, lines } = testLogger();
    const a = await pems(A);
    writeFileSync(join(dir, 'a.svid.pem'), a.cert);
    writeFileSync(join(dir, 'a.key.pem'), a.key);
    src = new FilesSource({ directory: dir, log, pollIntervalMs: 60_000, debounceMs: 20 });
    src.start();
    await until(() => src?.current());
    const b = await pems(A);
    // Half-written: the certificate cut in the middle, written in place.
    writeFileSync(join(dir, 'a.svid.pem'), b.cert.slice(0, b.cert.length / 2));
    await until(() => lines.find((l) => l.file === 'a.svid.pem'), 3000, 'warning');
    expect(src.current()?.svids[0]?.serial).toBe(a.serial);
    // The new certificate complete, but the key still the old one: mismatch, still the old SVID.
    writeFileSync(join(dir, 'a.svid.pem'), b.cert);
    await until(() => lines.find((l) => l.code === 'SVID_KEY_MISMATCH'), 3000, 'mismatch warning');
    expect(src.current()?.svids[0]?.serial).toBe(a.serial);
    atomicWrite(join(dir, 'a.key.pem'), b.key);
    await until(() => src?.current()?.svids[0]?.serial === b.serial, 3000, 'new pair');
    expect(src.state()).toBe('Available');
  });

  it('a rescan parses only the SVID files whose text changed; unchanged SVIDs stay the same objects', async () => {
    const a = await pems(A);
    const b = await pems(B);
    writeFileSync(join(dir, 'a.svid.pem'), a.cert + a.key);
    writeFileSync(join(dir, 'b.svid.pem'), b.cert);
    writeFileSync(join(dir, 'b.key.pem'), b.key);
    src = new FilesSource({ directory: dir, log: testLogger().log, pollIntervalMs: 60_000, debounceMs: 20 });
    src.start();
    const first = await until(() => src?.current());
    const heldA = first.svids.find((s) => s.spiffeId === A);
    const b2 = await pems(B);
    const parses = certificateParses();
    src.scan();
    src.scan();
    expect(certificateParses()).toBe(parses);
    // B rotates: one certificate parsed, A untouched.
    atomicWrite(join(dir, 'b.svid.pem'), b2.cert + b2.key);
    renameSync(join(dir, 'b.key.pem'), join(tmp.dir, 'old-b.key'));
    src.scan();
    const next = src.current();
    expect(next?.svids.find((s) => s.spiffeId === B)?.serial).toBe(b2.serial);
    expect(next?.svids.find((s) => s.spiffeId === A)).toBe(heldA);
    expect(certificateParses()).toBe(parses + 1);
  });

  it('drops an identity whose files are removed', async () => {
    const a = await pems(A);
    writeFileSync(join(dir, 'a.svid.pem'), a.cert + a.key);
    src = new FilesSource({ directory: dir, log: testLogger().log, pollIntervalMs: 60_000, debounceMs: 20 });
    src.start();
    await until(() => src?.current()?.svids.length === 1);
    renameSync(join(dir, 'a.svid.pem'), join(tmp.dir, 'gone.pem'));
    await until(() => src?.current()?.svids.length === 0, 3000, 'removal');
  });
});
