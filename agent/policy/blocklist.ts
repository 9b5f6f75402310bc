// Client IPs that held no challenge: DNS blocklist answers and the local aged blocklist, and the
// local list's aging schedule (listed for `period`, doubled for each repeat up to `max_period`,
// then off until the source proves itself bad again). Pure: the store keeps the entries.

import type { BlockEntry } from '../store/store.js';

export type { BlockEntry };

/** One DNS blocklist's answer for the client IP, as stored in signals under `dnsbl`. */
export interface DnsblAnswer {
  readonly zone: string;
  /** "listed" (an answer in 127.0.0.0/8), "clear" (NXDOMAIN), or "error" (no answer in time,
   * SERVFAIL, or an answer outside 127/8 or in 127.255.255.0/24, which lists use for "refused"). */
  readonly status: 'listed' | 'clear' | 'error';
  readonly answer?: string;
}

export interface Aging {
  readonly period: number;
  readonly maxPeriod: number;
}

/** The status of a DNSBL A answer: 127.0.0.2–127.255.254.255 list; 127.255.255.x is the list
 * refusing the query (e.g. through a public resolver), which must not hold mail. */
export function dnsblStatus(answers: readonly string[]): DnsblAnswer['status'] {
  const a = answers[0];
  if (a === undefined) return 'clear';
  if (!a.startsWith('127.') || a.startsWith('127.255.255.')) return 'error';
  return 'listed';
}

export function isListed(e: BlockEntry | undefined, now: number): boolean {
  return e !== undefined && (e.listedUntil === null || e.listedUntil > now);
}

/** The entry after one more bad message from `net` at `now`: a new entry is listed for `period`;
 * one still listed only counts (its listing is not stretched); one whose listing ran out is
 * listed again for twice as long as the time before, up to `maxPeriod`. */
export function recordBad(prev: BlockEntry | undefined, net: string, now: number, why: string, aging: Aging): BlockEntry {
  if (prev === undefined) return { net, count: 1, firstSeen: now, lastSeen: now, listedUntil: now + aging.period, repeats: 0, why };
  if (isListed(prev, now)) return { ...prev, count: prev.count + 1, lastSeen: now };
  const repeats = prev.repeats + 1;
  const span = Math.min(aging.maxPeriod, aging.period * 2 ** Math.min(repeats, 30));
  return { ...prev, count: prev.count + 1, lastSeen: now, listedUntil: now + span, repeats, why };
}

/** Why the client's mail gets no challenge, from the DNSBL answers and the local entry, or
 * undefined. */
export function blocklistHold(dnsbl: readonly DnsblAnswer[], local: BlockEntry | undefined, now: number): string | undefined {
  const hit = dnsbl.find((d) => d.status === 'listed');
  if (hit !== undefined) return `client listed in ${hit.zone} (${hit.answer ?? 'listed'})`;
  if (local !== undefined && isListed(local, now)) return `client on the local blocklist (${local.net})`;
  return undefined;
}
