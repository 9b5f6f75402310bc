// The authentication policy (`challenge.require`): from what SPF, DKIM and DMARC said about a
// message, whether its envelope sender may be asked to confirm. A request to an address that did
// not send the message is backscatter, so by default only a sender who proved the message came
// from them is asked. Pure: the checks themselves are agent/auth/.

export type RequirePolicy = 'aligned' | 'not-failed' | 'none';
export type DnsFallback = 'headers' | 'hold';

/** What the checks found, as stored in a held message's signals under `auth`. Domains are lower
 * case; `org` is the organisational domain (the public suffix plus one label). */
export interface AuthSignal {
  /** "mailauth" (checked here) or "header" (a trusted Authentication-Results line). */
  readonly source: 'mailauth' | 'header';
  readonly envelope: { readonly domain: string; readonly org: string };
  readonly spf: { readonly result: string; readonly domain: string };
  readonly dkim: readonly { readonly result: string; readonly domain: string; readonly org: string }[];
  readonly dmarc: { readonly result: string; readonly domain: string; readonly org: string; readonly policy: string } | undefined;
  readonly arc: string;
  /** Some DNS work did not answer in time (or answered SERVFAIL): results may be missing. */
  readonly temperror: boolean;
}

export interface AuthVerdict {
  /** Why no request may go out, or undefined. */
  readonly hold: string | undefined;
  /** Held as forged: a confirmation from the real sender must not release it. */
  readonly suspect: boolean;
}

const PASS: AuthVerdict = Object.freeze({ hold: undefined, suspect: false });

/** The domain that passed and is aligned with the envelope sender's, if any: SPF for the envelope
 * domain itself, or a DKIM signature or DMARC pass of the same organisational domain. */
export function alignedPass(a: AuthSignal): string | undefined {
  const org = a.envelope.org;
  if (org === '') return undefined;
  if (a.spf.result === 'pass' && a.spf.domain === a.envelope.domain) return `SPF pass for ${a.spf.domain}`;
  const d = a.dkim.find((s) => s.result === 'pass' && s.org === org);
  if (d !== undefined) return `DKIM pass for ${d.domain}`;
  if (a.dmarc?.result === 'pass' && a.dmarc.org === org) return `DMARC pass for ${a.dmarc.domain}`;
  return undefined;
}

/** What makes a message forged: DMARC fail for its From, or SPF fail for its envelope domain
 * that no DMARC pass or DKIM signature of that domain outweighs (forwarded mail fails SPF but
 * keeps its signature). */
export function failure(a: AuthSignal): string | undefined {
  if (a.dmarc?.result === 'fail') return `DMARC fail for ${a.dmarc.domain}${a.dmarc.policy !== '' ? ` (p=${a.dmarc.policy})` : ''}`;
  if (a.spf.result !== 'fail') return undefined;
  const signed = a.dmarc?.result === 'pass' || a.dkim.some((s) => s.result === 'pass' && s.org === a.envelope.org && a.envelope.org !== '');
  return signed ? undefined : `SPF fail for ${a.spf.domain}`;
}

/** The policy applied to what the checks found (undefined: they were not run). */
export function authPolicy(require: RequirePolicy, onDnsError: DnsFallback, a: AuthSignal | undefined): AuthVerdict {
  if (require === 'none' || a === undefined) return PASS;
  const failed = failure(a);
  if (failed !== undefined) return { hold: `forged sender: ${failed}`, suspect: true };
  if (require === 'aligned' && alignedPass(a) !== undefined) return PASS;
  if (a.temperror) return onDnsError === 'hold' ? { hold: 'DNS did not answer in time', suspect: false } : PASS;
  if (require === 'not-failed') return PASS;
  return { hold: 'sender not authenticated (no aligned SPF, DKIM or DMARC pass)', suspect: false };
}
