// Where a message came from: the client IP and HELO name the user's own MTA recorded in the
// Received: line it wrote (qmail-smtpd or Postfix format), or the TCPREMOTEIP the SMTP server
// left in the environment. Lines below ours are the sender's to write, so they are never read.
// Every parse is a single bounded scan: no backtracking regex meets the header text.

import type { Headers } from './header.js';
import { canonicalIp, isLocalIp } from './ip.js';

export interface Client {
  readonly ip: string | undefined;
  readonly helo: string | undefined;
  /** Where ip and helo were read: "env" (TCPREMOTEIP), "received" (our MTA's line), or "none". */
  readonly source: 'env' | 'received' | 'none';
  /** The host name our MTA wrote after "by" (for "received"). */
  readonly by?: string;
}

/** How much of one Received: value is read, and how many lines from the top. */
const MAX_VALUE = 2048;
const MAX_LINES = 16;
/** Comments nest (RFC 5322); deeper than this the rest of the value is ignored. */
const MAX_DEPTH = 4;

interface Token {
  readonly kind: 'word' | 'comment';
  readonly text: string;
}

/** Words and top-level comments of a Received: value up to its ";" date part. One pass. */
export function tokens(value: string): Token[] {
  const v = value.length > MAX_VALUE ? value.slice(0, MAX_VALUE) : value;
  const out: Token[] = [];
  let i = 0;
  while (i < v.length) {
    const c = v[i];
    if (c === ';') break;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
      continue;
    }
    if (c === '(') {
      let depth = 0;
      let j = i;
      for (; j < v.length; j++) {
        const d = v[j];
        if (d === '\\') j++;
        else if (d === '(') {
          if (++depth > MAX_DEPTH) return out;
        } else if (d === ')' && --depth === 0) break;
      }
      out.push({ kind: 'comment', text: v.slice(i + 1, j).trim() });
      i = j + 1;
      continue;
    }
    let j = i;
    while (j < v.length && v[j] !== ' ' && v[j] !== '\t' && v[j] !== '(' && v[j] !== ';' && v[j] !== '\r' && v[j] !== '\n') j++;
    out.push({ kind: 'word', text: v.slice(i, j) });
    i = j;
  }
  return out;
}

/** An address in a comment: Postfix's "rdns [IP]" / "[IPv6:IP]" / "[IP]:port", qmail's "IP",
 * "user@IP" (TCPREMOTEINFO) or "[IP]". */
function ipIn(comment: string): string | undefined {
  const open = comment.lastIndexOf('[');
  if (open >= 0) {
    const close = comment.indexOf(']', open);
    if (close < 0) return undefined;
    let inner = comment.slice(open + 1, close);
    if (inner.slice(0, 5).toLowerCase() === 'ipv6:') inner = inner.slice(5);
    return canonicalIp(inner);
  }
  const at = comment.lastIndexOf('@');
  const bare = at >= 0 ? comment.slice(at + 1) : comment;
  return bare.includes(' ') ? undefined : canonicalIp(bare);
}

export interface ReceivedLine {
  readonly from: string | undefined;
  readonly helo: string | undefined;
  readonly ip: string | undefined;
  readonly by: string | undefined;
}

/** The from/HELO/IP/by parts of one Received: value, in qmail's or Postfix's format:
 *   qmail:   from RDNS (HELO helo) (IP) by NAME with SMTP; …   (no HELO comment: HELO = RDNS)
 *   Postfix: from HELO (RDNS [IP]) by NAME (Postfix) with ESMTP id …; … */
export function parseReceived(value: string): ReceivedLine {
  const t = tokens(value);
  let from: string | undefined;
  let helo: string | undefined;
  let ip: string | undefined;
  let by: string | undefined;
  let part: 'none' | 'from' | 'by' | 'rest' = 'none';
  for (let i = 0; i < t.length; i++) {
    const tok = t[i];
    if (tok === undefined) break;
    if (tok.kind === 'word') {
      const w = tok.text.toLowerCase();
      if (w === 'from' && part === 'none') {
        part = 'from';
        from = t[i + 1]?.kind === 'word' ? t[++i]?.text : undefined;
      } else if (w === 'by' && (part === 'from' || part === 'none')) {
        part = 'by';
        by = t[i + 1]?.kind === 'word' ? t[++i]?.text.toLowerCase() : undefined;
      } else if (part !== 'none') part = part === 'from' ? 'from' : 'rest';
      continue;
    }
    if (part !== 'from') continue;
    const c = tok.text;
    if (c.slice(0, 5).toUpperCase() === 'HELO ' || c.slice(0, 5).toUpperCase() === 'EHLO ') {
      helo = c.slice(5).trim();
      continue;
    }
    ip ??= ipIn(c);
  }
  // qmail names the HELO only when it differs from the client's host name; Postfix writes the
  // HELO first. Either way the word after "from" is the HELO unless a HELO comment said otherwise.
  if (helo === undefined && from !== undefined && from.toLowerCase() !== 'unknown') helo = from;
  return { from, helo, ip, by: by?.replace(/\.$/, '') };
}

/** The client of this delivery: TCPREMOTEIP when the SMTP server set it, else the topmost
 * Received: line written by one of `mtaNames` whose client is not this machine (a content filter
 * re-injecting over loopback writes such lines above the real one). Reading stops at the first
 * line another host wrote: anything below it could be forged. */
export function clientOf(headers: Headers, mtaNames: readonly string[], env: NodeJS.ProcessEnv): Client {
  const envIp = env['TCPREMOTEIP'] === undefined ? undefined : canonicalIp(env['TCPREMOTEIP']);
  if (envIp !== undefined) {
    const host = env['TCPREMOTEHOST'];
    return { ip: envIp, helo: host !== undefined && host !== '' && host.length <= 253 ? host : undefined, source: 'env' };
  }
  const ours = new Set(mtaNames.map((n) => n.toLowerCase().replace(/\.$/, '')));
  let n = 0;
  for (const f of headers.fields) {
    if (f.name !== 'received') continue;
    if (++n > MAX_LINES) break;
    const r = parseReceived(f.value);
    if (r.by === undefined || !ours.has(r.by)) break;
    if (r.ip === undefined || isLocalIp(r.ip)) continue;
    return { ip: r.ip, helo: r.helo?.slice(0, 253), source: 'received', by: r.by };
  }
  return { ip: undefined, helo: undefined, source: 'none' };
}
