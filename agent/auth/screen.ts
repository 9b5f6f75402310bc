// The held path's checks after the suppression rules (DESIGN.md step 6): where the message came
// from, the network checks when the config asks for them (loaded only then: mailauth is large),
// the visible-recipient rule and the local blocklist; then policy/screen.ts decides. Shared by
// `vouch deliver` and `vouch check`.

import { hostname } from 'node:os';
import type { Config } from '../home/config.js';
import { addressKey } from '../mail/address.js';
import type { Headers } from '../mail/header.js';
import { clientOf, type Client } from '../mail/received.js';
import { screen } from '../policy/screen.js';
import { suppression } from '../policy/suppress.js';
import { recipientVisible } from '../policy/visible.js';
import type { BlockEntry } from '../store/store.js';
import type { CheckOutput } from './check.js';

export interface ScreenInput {
  readonly config: Config;
  /** The envelope sender ('' = null sender). */
  readonly sender: string;
  readonly message: Buffer;
  readonly headers: Headers;
  readonly now: number;
  /** The process environment (TCPREMOTEIP, TCPREMOTEHOST). */
  readonly vars: NodeJS.ProcessEnv;
}

/** The client, what the suppression rules said, and the network checks' findings. */
export interface Screening {
  readonly client: Client;
  readonly suppressed: string | undefined;
  /** A suppression rule that applies marks the mail spam or forged. */
  readonly suppressedSuspect: boolean;
  readonly checks: CheckOutput | undefined;
}

export interface Judged {
  /** Why no challenge may go out, or undefined. */
  readonly hold: string | undefined;
  readonly suspect: boolean;
  readonly signals: Record<string, unknown>;
}

/** The host names our MTA writes after "by": trust.mta_names, or this machine's name. */
export function mtaNames(config: Config, host: () => string = hostname): readonly string[] {
  return config.trust.mta_names.length > 0 ? config.trust.mta_names : [host()];
}

/** The suppression rules and the switches before them, first match wins; suspect when any rule
 * that applies says spam or forged. */
export function preScreen(i: ScreenInput, silent: string | undefined = undefined): { why: string | undefined; suspect: boolean } {
  const { config } = i;
  const rules = suppression({ sender: i.sender, senderKey: addressKey(i.sender), own: config.identity.address.toLowerCase(), headers: i.headers, authservIds: config.challenge.authserv_ids });
  const why =
    silent ??
    (config.challenge.enabled ? undefined : 'challenges are turned off') ??
    (i.message.length > config.delivery.max_size ? 'message larger than max_size' : undefined) ??
    rules?.why;
  return { why, suspect: rules?.suspect === true };
}

/** Finds the client and, when a challenge is still possible and the config asks for them, runs
 * the network checks. DNS trouble never throws: it is recorded as temperror. */
export async function screening(i: ScreenInput, silent: string | undefined = undefined): Promise<Screening> {
  const { config } = i;
  const client = clientOf(i.headers, mtaNames(config), i.vars);
  const pre = preScreen(i, silent);
  const suppressed = pre.why;
  const wanted = config.challenge.require !== 'none' || config.dns.blocklists.length > 0;
  if (suppressed !== undefined || !wanted) return { client, suppressed, suppressedSuspect: pre.suspect, checks: undefined };
  const { runChecks } = await import('../auth/check.js');
  const checks = await runChecks({
    message: i.message,
    sender: i.sender,
    headers: i.headers,
    client,
    authenticate: config.challenge.require !== 'none',
    authservIds: config.challenge.authserv_ids,
    mtaNames: mtaNames(config),
    servers: config.dns.servers,
    timeoutMs: config.dns.timeout,
    blocklists: config.dns.blocklists,
    hostname: hostname(),
  });
  return { client, suppressed, suppressedSuspect: pre.suspect, checks };
}

/** Every check's verdict and the signals to store with the held message. */
export async function judge(i: ScreenInput, s: Screening, store: { blockedClient(ip: string, now: number): Promise<BlockEntry | undefined> }): Promise<Judged> {
  const { config } = i;
  const signals: Record<string, unknown> = { client: s.client };
  if (s.suppressed !== undefined) return { hold: s.suppressed, suspect: s.suppressedSuspect, signals };
  const local = s.client.ip === undefined ? undefined : await store.blockedClient(s.client.ip, i.now);
  const visible = config.challenge.require_visible_recipient ? recipientVisible(i.headers, config.identity.address, config.identity.delimiter) : undefined;
  if (s.checks?.auth !== undefined) signals['auth'] = { ...s.checks.auth, ms: s.checks.ms };
  if (s.checks !== undefined && s.checks.dnsbl.length > 0) signals['dnsbl'] = s.checks.dnsbl;
  if (local !== undefined) signals['blocklist'] = { net: local.net, until: local.listedUntil, why: local.why };
  if (visible !== undefined) signals['visible'] = visible;
  const v = screen({
    require: config.challenge.require,
    onDnsError: config.challenge.on_dns_error,
    visible,
    auth: s.checks?.auth,
    dnsbl: s.checks?.dnsbl ?? [],
    local,
    now: i.now,
  });
  return { hold: v.hold, suspect: v.suspect || s.suppressedSuspect, signals };
}
