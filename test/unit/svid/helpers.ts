import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { Logger } from '../../../src/log.ts';
import { derToPem } from '../../../src/svid/certificate.ts';
import type { IdentityCredentials } from '../../../src/svid/credentials.ts';
import type { IssuedSvid } from '../../../src/svid/dev-ca.ts';
import { parseOwnSvid } from '../../../src/svid/x509-svid.ts';

/** Silent unless WARD_TEST_LOG is set; records every line so tests can assert on logs. */
export function testLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: process.env.WARD_TEST_LOG ?? 'debug' },
    {
      write(s: string) {
        lines.push(JSON.parse(s) as Record<string, unknown>);
        if (process.env.WARD_TEST_LOG !== undefined) process.stderr.write(s);
      },
    },
  );
  return { log, lines };
}

export function tempDir(prefix = 'ward-svid-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Polls until fn returns something other than undefined, null or false. */
export async function until<T>(
  fn: () => T | undefined | null | false,
  timeoutMs = 5000,
  what = 'condition',
): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== null && v !== false) return v;
    if (Date.now() - start > timeoutMs)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** What the data plane is handed for an SVID the development CA issued (as the identity store builds it). */
export function credentialsOf(s: IssuedSvid): IdentityCredentials {
  const svid = parseOwnSvid({ chain: s.chain, key: s.key });
  return {
    spiffeId: s.spiffeId,
    certChainPem: s.chain.map((d) => derToPem(d)).join(''),
    keyPem: derToPem(s.key, 'PRIVATE KEY'),
    serial: svid.serial,
    notBefore: svid.notBefore,
    notAfter: svid.notAfter,
  };
}
