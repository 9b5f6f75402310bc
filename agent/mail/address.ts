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

/** The key a held message is filed under: its address key, or for a sender that is no plain
 * address (and so is never challenged) the sender itself, trimmed and in lower case. A list entry
 * made from a held message (exactPattern) and a later lookup of the same sender (lookupKeys) both
 * use this key, so the entry finds that sender again. */
export function senderKeyOf(sender: string): string {
  return addressKey(sender) ?? sender.trim().toLowerCase();
}

/** The address inside an SRS-rewritten sender (SRS0 or SRS1, as a forwarder writes them), or
 * undefined when `key` is no SRS address. Only the syntax is read: anyone can write an SRS address. */
export function unwrapSrs(key: string): string | undefined {
  const k = key.toLowerCase();
  const at = k.lastIndexOf('@');
  if (at < 0) return undefined;
  const local = k.slice(0, at);
  let rest: string;
  if (/^srs0[=+-]/.test(local)) {
    // SRS0=hash=tt=domain=local
    const parts = local.slice(5).split('=');
    if (parts.length < 4) return undefined;
    rest = parts.slice(2).join('=');
  } else if (/^srs1[=+-]/.test(local)) {
    // SRS1=hash=first-forwarder==hash=tt=domain=local
    const dbl = local.indexOf('==', 5);
    if (dbl < 0) return undefined;
    const parts = local.slice(dbl + 2).split('=');
    if (parts.length < 4) return undefined;
    rest = parts.slice(2).join('=');
  } else {
    return undefined;
  }
  const eq = rest.indexOf('=');
  if (eq <= 0 || eq === rest.length - 1) return undefined;
  return addressKey(`${rest.slice(eq + 1)}@${rest.slice(0, eq)}`);
}

/** The key a confirmation is bound to: the address key without a `+tag` and unwrapped from SRS,
 * so that the challenge (sent to the held sender) and the reply (from wherever the person writes)
 * meet on the same key. Undefined for anything that is not a plain address. */
export function bindingKey(addr: string): string | undefined {
  let k = addressKey(addr);
  if (k === undefined) return undefined;
  k = unwrapSrs(k) ?? k;
  const at = k.lastIndexOf('@');
  const plus = k.indexOf('+');
  if (plus > 0 && plus < at) k = k.slice(0, plus) + k.slice(at);
  return isPlainAddress(k) ? k : undefined;
}

/** The list entry for an address taken from mail (a confirmation, release + whitelist, delete +
 * blacklist, a recipient of `vouch send`): always the exact address, whatever characters it holds,
 * never parsed as a pattern (a sender `*@example.com` must not list all of example.com). Takes the
 * sender's key (senderKeyOf); throws UsageError for anything else. */
export function exactPattern(key: string): Pattern {
  const a = key.trim().toLowerCase();
  if (a === '' || !a.includes('@') || a.length > 254) throw new UsageError(`not an address: "${key.slice(0, 80)}"`);
  return { key: `a:${a}`, text: a };
}

/** The exact list entries for these keys, skipping what is no address (the null sender) and
 * duplicates. */
export function exactPatterns(keys: Iterable<string | undefined>): Pattern[] {
  const out = new Map<string, Pattern>();
  for (const k of keys) {
    if (k === undefined) continue;
    try {
      const p = exactPattern(k);
      out.set(p.key, p);
    } catch {
      /* the null sender and what has no @ cannot be listed */
    }
  }
  return [...out.values()];
}

/** The list entries a pattern the user names for removal may stand for: the pattern it parses as,
 * and the exact address (an entry made from mail is shown as the address itself, which may read
 * like a pattern: `*@example.com`). With `shown`, the text is one the list printed, so a parsed
 * pattern counts only when it prints as that same text. Throws UsageError when it is neither. */
export function entriesNamed(input: string, opts: { readonly shown?: boolean } = {}): Pattern[] {
  const out: Pattern[] = [];
  let parseError: unknown;
  try {
    const p = parsePattern(input);
    if (opts.shown !== true || p.text === input.trim().toLowerCase()) out.push(p);
  } catch (err) {
    parseError = err;
  }
  try {
    const e = exactPattern(input);
    if (!out.some((p) => p.key === e.key)) out.push(e);
  } catch {
    if (parseError !== undefined) throw parseError;
  }
  return out;
}

/** Every index key a sender could be listed under; a lookup is one indexed `IN (…)` query. A sender
 * that is no plain address is found by its exact entry (exactPattern of senderKeyOf) and by its
 * domain, never by a prefix. */
export function lookupKeys(sender: string): string[] {
  const addr = addressKey(sender);
  if (addr === undefined) {
    const key = senderKeyOf(sender);
    if (key === '' || !key.includes('@') || key.length > 254) return [];
    const domain = domainOf(key);
    return isPlainAddress(`x@${domain}`) ? [`a:${key}`, ...domainKeys(domain)] : [`a:${key}`];
  }
  const at = addr.lastIndexOf('@');
  const local = addr.slice(0, at);
  const domain = addr.slice(at + 1);
  const keys = [`a:${addr}`, ...domainKeys(domain)];
  for (let i = 0; i < local.length - 1; i++) {
    const c = local[i];
    if (c === '-' || c === '+') keys.push(`p:${local.slice(0, i + 1)}@${domain}`);
  }
  return keys;
}

function domainKeys(domain: string): string[] {
  const keys = [`d:${domain}`];
  const labels = domain.split('.');
  for (let i = 1; i < labels.length; i++) keys.push(`s:${labels.slice(i).join('.')}`);
  return keys;
}

/** The address in a From header's text (`Name <a@b>` or `a@b`), as its key, or undefined. Looks at
 * the last `<…>` only: bounded, no backtracking. */
export function headerAddress(from: string): string | undefined {
  const open = from.lastIndexOf('<');
  const close = from.indexOf('>', open + 1);
  const inner = open >= 0 && close > open ? from.slice(open + 1, close) : from;
  return addressKey(inner);
}
