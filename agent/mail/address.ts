// Mail addresses as vouch handles them: the strict grammar a sender must meet before it goes on a
// command line or into a header, the normal form used as a key, and list patterns with their keys.

import { UsageError } from '../failure/failure.js';

const LOCAL = /^[a-z0-9!#$%&'*+/=?^_{}~](?:[a-z0-9!#$%&'*+/=?^_{}~-]|\.(?!\.))*$/i;
const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i;

/** True for a plain `local@domain` address: dot-atom local part (no leading dash, no quoting),
 * LDH domain labels, ASCII only, within RFC 5321 lengths. */
export function isPlainAddress(addr: string): boolean {
  if (addr.length > 254) return false;
  const at = addr.lastIndexOf('@');
  if (at <= 0 || at > 64) return false;
  const local = addr.slice(0, at);
  const domain = addr.slice(at + 1);
  if (!LOCAL.test(local) || local.endsWith('.')) return false;
  const labels = domain.split('.');
  return labels.length >= 1 && domain.length <= 253 && labels.every((l) => LABEL.test(l));
}

/** The key an address is known by: lower case, with a BATV `prvs=tag=` prefix removed. Returns
 * undefined for anything that is not a plain address (the null sender among them). */
export function addressKey(addr: string): string | undefined {
  let a = addr.trim().toLowerCase();
  const batv = /^prvs=[0-9a-z]{4,12}=(.+)$/.exec(a);
  if (batv?.[1]) a = batv[1];
  return isPlainAddress(a) ? a : undefined;
}

export function domainOf(addr: string): string {
  return addr.slice(addr.lastIndexOf('@') + 1);
}

export interface Pattern {
  /** The index key: `a:` exact, `d:` domain, `s:` subdomains, `p:` VERP prefix. */
  readonly key: string;
  /** The pattern as it is shown back to the user. */
  readonly text: string;
}

/** Parses one whitelist/blacklist pattern: `bob@example.com`, `@example.com` (or `*@example.com`),
 * `*@*.example.com` (any subdomain), `list-return-@lists.example` (qmail's -default prefix, also
 * written `list-return-default@lists.example`). Throws UsageError naming what is wrong. */
export function parsePattern(input: string): Pattern {
  const text = input.trim().toLowerCase();
  const bad = (why: string) => new UsageError(`bad pattern "${input.trim().slice(0, 80)}": ${why}`);
  const at = text.lastIndexOf('@');
  if (at < 0) throw bad('it needs an @');
  const local = text.slice(0, at);
  let domain = text.slice(at + 1);
  let sub = false;
  if (domain.startsWith('*.')) {
    sub = true;
    domain = domain.slice(2);
  }
  if (!isPlainAddress(`x@${domain}`)) throw bad('the domain is not valid');
  if (sub) {
    if (local !== '*' && local !== '') throw bad('use *@*.domain for subdomains');
    return { key: `s:${domain}`, text: `*@*.${domain}` };
  }
  if (local === '' || local === '*') return { key: `d:${domain}`, text: `@${domain}` };
  let prefix: string | undefined;
  if (local.endsWith('-default') || local.endsWith('+default')) prefix = local.slice(0, -'default'.length);
  else if (local.endsWith('-') || local.endsWith('+')) prefix = local;
  if (prefix !== undefined) {
    if (!isPlainAddress(`${prefix}x@${domain}`)) throw bad('the local part is not valid');
    return { key: `p:${prefix}@${domain}`, text: `${prefix}@${domain}` };
  }
  if (local.includes('*')) throw bad('only @domain, *@*.domain and prefix- wildcards are supported');
  if (!isPlainAddress(`${local}@${domain}`)) throw bad('the address is not valid');
  return { key: `a:${local}@${domain}`, text: `${local}@${domain}` };
}

/** The list entry for an address taken from mail (a confirmation, release + whitelist, delete +
 * blacklist, a recipient of `vouch send`): always the exact address, whatever characters it holds,
 * never parsed as a pattern (a sender `*@example.com` must not list all of example.com). Takes the
 * address's key (addressKey); throws UsageError for anything else. */
export function exactPattern(key: string): Pattern {
  const a = key.trim().toLowerCase();
  if (a === '' || !a.includes('@') || a.length > 254) throw new UsageError(`not an address: "${key.slice(0, 80)}"`);
  return { key: `a:${a}`, text: a };
}

/** Every index key a sender could be listed under; a lookup is one indexed `IN (…)` query. */
export function lookupKeys(sender: string): string[] {
  const addr = addressKey(sender);
  if (addr === undefined) return [];
  const at = addr.lastIndexOf('@');
  const local = addr.slice(0, at);
  const domain = addr.slice(at + 1);
  const keys = [`a:${addr}`, `d:${domain}`];
  const labels = domain.split('.');
  for (let i = 1; i < labels.length; i++) keys.push(`s:${labels.slice(i).join('.')}`);
  for (let i = 0; i < local.length - 1; i++) {
    const c = local[i];
    if (c === '-' || c === '+') keys.push(`p:${local.slice(0, i + 1)}@${domain}`);
  }
  return keys;
}
