// Explaining a verdict the way `cilium policy trace` does: each direction, the rules that decided.
import type { DirectionVerdict, MatchedRule, Verdict } from './decide.ts';

/** The `-o json` shape of `ward policy trace`. */
export interface TraceJson {
  readonly egress: TraceDirectionJson;
  readonly ingress: TraceDirectionJson;
  readonly authRequired: boolean;
}

export interface TraceDirectionJson {
  readonly verdict: 'allow' | 'deny';
  readonly authRequired: boolean;
  readonly matched: readonly TraceRuleJson[];
}

export interface TraceRuleJson {
  readonly policy: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly rule: string;
  readonly effect: 'allow' | 'deny' | 'default-deny';
  readonly authentication?: string;
  readonly source: string;
}

function ruleJson(m: MatchedRule): TraceRuleJson {
  const base = {
    policy: m.policy,
    kind: m.kind,
    namespace: m.namespace,
    name: m.name,
    rule: m.path,
    effect: m.effect,
    source: `${m.file}#${m.document}`,
  };
  return m.auth === undefined ? base : { ...base, authentication: m.auth };
}

function dirJson(d: DirectionVerdict): TraceDirectionJson {
  return { verdict: d.verdict, authRequired: d.authRequired, matched: d.matched.map(ruleJson) };
}

export function traceJson(v: Verdict): TraceJson {
  // Top-level authRequired: both directions allow and an allowing rule in either requires authentication.
  return { egress: dirJson(v.egress), ingress: dirJson(v.ingress), authRequired: v.authRequired };
}

function describeRule(m: MatchedRule): string {
  const auth = m.auth === undefined ? '' : ` [authentication: ${m.auth}]`;
  return `${m.policy} ${m.path}${auth} (${m.file}#${m.document})`;
}

const REASON: Record<DirectionVerdict['reason'], string> = {
  'not-enforced': 'not enforced: the endpoint is not a pod of this cluster',
  'no-policy': 'no policy selects the endpoint in this direction: allowed by default',
  'no-default-deny': 'rules select the endpoint, but none enables default deny and none matched: allowed',
  allowed: 'allowed by',
  denied: 'denied by',
  'default-deny': 'no rule allows it; default deny enabled by',
};

export function traceText(v: Verdict, labels: { from: string; to: string; port: string }): string {
  const out: string[] = [];
  out.push(`Tracing From: ${labels.from} => To: ${labels.to} Port: ${labels.port}`);
  const section = (title: string, at: string, d: DirectionVerdict): void => {
    out.push('', `${title} (enforced at ${at}):`);
    out.push(`  ${REASON[d.reason]}${d.matched.length > 0 ? ':' : ''}`);
    for (const m of d.matched) out.push(`    ${describeRule(m)}`);
    const auth = d.verdict === 'allow' && d.authRequired ? ` (authentication: ${d.auth})` : '';
    out.push(`  ${title} verdict: ${d.verdict === 'allow' ? 'ALLOWED' : 'DENIED'}${auth}`);
  };
  section('Egress', 'the source', v.egress);
  section('Ingress', 'the destination', v.ingress);
  out.push('');
  if (v.verdict === 'allow') {
    out.push(
      `Final verdict: ALLOWED${v.authRequired ? `, mutual authentication required (${v.auth})` : ', no authentication required'}`,
    );
  } else out.push(`Final verdict: DENIED (${v.direction})`);
  return `${out.join('\n')}\n`;
}
