// The checks that need the network, run only on the held path: SPF, DKIM, DMARC and ARC through
// mailauth (or the user's own MTA's trusted Authentication-Results instead), and the DNS blocklists,
// all in parallel within one time budget. What does not answer in time is recorded as temperror;
// nothing here ever fails a delivery.

import * as arcLib from 'mailauth/lib/arc/index.js';
import * as dkimLib from 'mailauth/lib/dkim/verify.js';
import * as dmarcLib from 'mailauth/lib/dmarc/index.js';
import * as spfLib from 'mailauth/lib/spf/index.js';
import { getDomain } from 'tldts';
import { domainOf } from '../mail/address.js';
import { trustedResults, type AuthResults } from '../mail/authresults.js';
import { headerEnd, type Headers } from '../mail/header.js';
import { reversedName } from '../mail/ip.js';
import type { Client } from '../mail/received.js';
import type { AuthSignal } from '../policy/auth.js';
import { dnsblStatus, type DnsblAnswer } from '../policy/blocklist.js';
import { budgetResolver, type ResolveFn } from './resolver.js';

export interface CheckInput {
  readonly message: Buffer;
  /** The envelope sender ('' = null sender). */
  readonly sender: string;
  readonly headers: Headers;
  readonly client: Client;
  /** Check SPF/DKIM/DMARC at all (challenge.require is not "none"). */
  readonly authenticate: boolean;
  readonly authservIds: readonly string[];
  readonly mtaNames: readonly string[];
  readonly servers: readonly string[];
  readonly timeoutMs: number;
  readonly blocklists: readonly string[];
  /** Our own host name, for SPF's explanations. */
  readonly hostname: string;
}

export interface CheckOutput {
  readonly auth: AuthSignal | undefined;
  readonly dnsbl: readonly DnsblAnswer[];
  /** How long the checks took, in milliseconds. */
  readonly ms: number;
}

/** The organisational domain (public suffix plus one label), or the domain itself. */
export function orgDomain(domain: string): string {
  const d = domain.toLowerCase().replace(/\.$/, '');
  if (d === '') return '';
  return getDomain(d, { allowPrivateDomains: true }) ?? d;
}

function envelopeOf(sender: string): AuthSignal['envelope'] {
  const domain = sender.includes('@') ? domainOf(sender.toLowerCase()) : '';
  return { domain, org: orgDomain(domain) };
}

export async function runChecks(i: CheckInput): Promise<CheckOutput> {
  // process.hrtime rather than performance.now(): node:perf_hooks is a load of its own (bench P2A).
  const started = process.hrtime.bigint();
  const budget = budgetResolver(i.servers, i.timeoutMs);
  try {
    const trusted = trustedResults(i.headers, i.authservIds, i.mtaNames);
    const fromHeader = i.authenticate ? fromTrusted(trusted, i.sender) : undefined;
    const late = (): AuthSignal => ({ ...unchecked(i.sender), temperror: true });
    const auth =
      !i.authenticate || fromHeader !== undefined
        ? Promise.resolve(fromHeader)
        : Promise.race([authenticate(i, budget.resolve).catch(late), budget.expired.then(late)]);
    const ip = i.client.ip;
    const lists = ip === undefined ? [] : i.blocklists.map((zone) => Promise.race([dnsbl(budget.resolve, ip, zone), budget.expired.then((): DnsblAnswer => ({ zone, status: 'error', answer: 'timeout' }))]));
    const [a, d] = await Promise.all([auth, Promise.all(lists)]);
    const out = a === undefined || a.source === 'header' ? a : { ...a, temperror: a.temperror || budget.temperror() };
    return { auth: out, dnsbl: d, ms: Math.round(Number(process.hrtime.bigint() - started) / 1e6) };
  } finally {
    budget.close();
  }
}

function unchecked(sender: string): Omit<AuthSignal, 'temperror'> {
  const envelope = envelopeOf(sender);
  return { source: 'mailauth', envelope, spf: { result: 'none', domain: envelope.domain }, dkim: [], dmarc: undefined, arc: 'none' };
}

async function dnsbl(resolve: ResolveFn, ip: string, zone: string): Promise<DnsblAnswer> {
  try {
    const answers = (await resolve(reversedName(ip, zone), 'A')) as string[];
    const status = dnsblStatus(answers);
    return { zone, status, answer: answers[0] ?? '' };
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (code === 'ENOTFOUND' || code === 'ENODATA') return { zone, status: 'clear' };
    return { zone, status: 'error', answer: code === 'ETIMEOUT' ? 'timeout' : code.toLowerCase() || 'error' };
  }
}

/** SPF (needs the client IP) and DKIM at once, then ARC and DMARC on DKIM's findings. */
async function authenticate(i: CheckInput, resolver: ResolveFn): Promise<AuthSignal> {
  const base = unchecked(i.sender);
  const ip = i.client.ip;
  const spfRun =
    ip === undefined
      ? Promise.resolve(base.spf)
      : spfLib
          .spf({ sender: i.sender, ip, helo: i.client.helo ?? ip, mta: i.hostname, resolver } as Parameters<typeof spfLib.spf>[0])
          .then((r) => ({ result: String(r.status?.result ?? 'none'), domain: String(r.domain ?? base.envelope.domain).toLowerCase() }));
  const [spf, dkim] = await Promise.all([spfRun, dkimLib.dkimVerify(dkimInput(i.message), { resolver, sender: i.sender } as Parameters<typeof dkimLib.dkimVerify>[1])]);
  const sigs = (dkim.results ?? []).map((r) => {
    const domain = String(r.signingDomain ?? '').toLowerCase();
    return { result: String(r.status?.result ?? 'none'), domain, org: orgDomain(domain) };
  });
  const arc = await arcLib.arc(dkim.arc as Parameters<typeof arcLib.arc>[0], { resolver } as Parameters<typeof arcLib.arc>[1]).catch(() => undefined);
  const from = Array.isArray(dkim.headerFrom) && dkim.headerFrom.length === 1 ? String(dkim.headerFrom[0]) : undefined;
  let dmarc: AuthSignal['dmarc'];
  if (from !== undefined && from.includes('@')) {
    const r = await dmarcLib.dmarc({
      headerFrom: from,
      spfDomains: spf.result === 'pass' ? [spf.domain] : [],
      dkimDomains: (dkim.results ?? [])
        .filter((s) => s.status?.result === 'pass')
        .map((s) => ({ id: s.id, domain: s.signingDomain, aligned: s.status?.aligned, underSized: s.status?.underSized })),
      arcResult: arc,
      resolver,
    } as Parameters<typeof dmarcLib.dmarc>[0]);
    if (r !== false && r !== undefined) {
      const domain = domainOf(from.toLowerCase());
      dmarc = { result: String(r.status?.result ?? 'none'), domain, org: orgDomain(domain), policy: String((r as { policy?: string }).policy ?? '').toLowerCase() };
    }
  }
  const temperror = spf.result === 'temperror' || sigs.some((s) => s.result === 'temperror') || dmarc?.result === 'temperror';
  return { ...base, spf, dkim: sigs, dmarc, arc: String(arc?.status?.result ?? 'none'), temperror };
}

/** A field that makes mailauth read the body: a DKIM signature or part of an ARC set (a line of the
 * header block that starts with one of these names, whatever follows; folded lines start with
 * white space and never match). */
const SIGNED = /^(dkim-signature|arc-)/im;

/** What dkimVerify needs to see: the whole message when the header block carries a DKIM signature
 * or an ARC set, otherwise the header block alone (up to and with its blank line). Without a
 * signature mailauth reads the body only to pass it by (a line at a time, each one a Buffer.concat
 * and an await: most of what the checks cost on a 20 KB unsigned message), and every result it
 * gives (no signature, the From addresses, no ARC chain) comes from the header block. */
export function dkimInput(message: Buffer): Buffer {
  const { body } = headerEnd(message, message.length);
  if (body >= message.length) return message;
  const block = message.subarray(0, body);
  return SIGNED.test(block.toString('latin1')) ? message : block;
}

/** The results our own MTA wrote, as an AuthSignal, when they say anything about SPF, DKIM or
 * DMARC; undefined otherwise (then vouch checks itself). */
export function fromTrusted(results: readonly AuthResults[], sender: string): AuthSignal | undefined {
  const all = results.flatMap((r) => r.results);
  if (!all.some((r) => r.method === 'spf' || r.method === 'dkim' || r.method === 'dmarc')) return undefined;
  const envelope = envelopeOf(sender);
  const spfRow = all.find((r) => r.method === 'spf');
  const mailfrom = spfRow?.props['smtp.mailfrom'] ?? '';
  const spf = { result: spfRow?.result ?? 'none', domain: (mailfrom.includes('@') ? domainOf(mailfrom.toLowerCase()) : mailfrom.toLowerCase()) || envelope.domain };
  const dkim = all
    .filter((r) => r.method === 'dkim')
    .map((r) => {
      const d = (r.props['header.d'] ?? domainOf(r.props['header.i'] ?? '@')).toLowerCase();
      return { result: r.result, domain: d, org: orgDomain(d) };
    });
  const dm = all.find((r) => r.method === 'dmarc');
  const fromDomain = (dm?.props['header.from'] ?? '').toLowerCase();
  const dmarc = dm === undefined ? undefined : { result: dm.result, domain: fromDomain, org: orgDomain(fromDomain), policy: dm.policy || (dm.props['policy.dmarc'] ?? '').toLowerCase() };
  const arc = all.find((r) => r.method === 'arc')?.result ?? 'none';
  const temperror = all.some((r) => r.result === 'temperror');
  return { source: 'header', envelope, spf, dkim, dmarc, arc, temperror };
}
