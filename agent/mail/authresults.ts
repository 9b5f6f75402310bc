// Authentication-Results (RFC 8601) written by the user's own MTA: read only from the authserv-ids
// the user trusts, and only above the first Received: line another host wrote (anything below
// came with the message and could be forged). One bounded pass a header, no backtracking regex.

import type { Headers } from './header.js';
import { parseReceived } from './received.js';

export interface ResultInfo {
  readonly method: string;
  readonly result: string;
  /** ptype.property → value, e.g. "header.d" → "example.com". */
  readonly props: Readonly<Record<string, string>>;
  /** A "p=reject" style policy named in a comment (OpenDMARC writes "(p=reject dis=none)"). */
  readonly policy: string;
}

export interface AuthResults {
  readonly authservId: string;
  readonly results: readonly ResultInfo[];
}

const MAX_VALUE = 8192;
const MAX_RESULTS = 32;

/** Splits off comments (kept apart) and cuts the value at top-level ";" in one pass. */
function parts(value: string): { text: string; comments: string }[] {
  const v = value.length > MAX_VALUE ? value.slice(0, MAX_VALUE) : value;
  const out: { text: string; comments: string }[] = [];
  let text = '';
  let comments = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < v.length && out.length < MAX_RESULTS; i++) {
    const c = v[i] ?? '';
    if (c === '\\') {
      i++;
      continue;
    }
    if (depth > 0) {
      if (c === '(') depth++;
      else if (c === ')') depth--;
      if (depth > 0) comments += c;
      else comments += ' ';
      continue;
    }
    if (quoted) {
      if (c === '"') quoted = false;
      else text += c;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '(') depth = 1;
    else if (c === ';') {
      out.push({ text: text.trim(), comments });
      text = '';
      comments = '';
    } else text += c;
  }
  if (out.length < MAX_RESULTS) out.push({ text: text.trim(), comments });
  return out;
}

/** One Authentication-Results value, or undefined when it has no authserv-id. */
export function parseAuthResults(value: string): AuthResults | undefined {
  const [head, ...rest] = parts(value);
  const authservId = head?.text.split(/[ \t]+/)[0]?.toLowerCase() ?? '';
  if (authservId === '') return undefined;
  const results: ResultInfo[] = [];
  for (const p of rest) {
    const words = p.text.split(/[ \t\r\n]+/).filter((w) => w !== '');
    const first = words[0];
    const eq = first?.indexOf('=') ?? -1;
    if (first === undefined || eq <= 0) continue;
    const props: Record<string, string> = {};
    for (const w of words.slice(1)) {
      const e = w.indexOf('=');
      if (e > 0 && w.slice(0, e).includes('.')) props[w.slice(0, e).toLowerCase()] = w.slice(e + 1);
    }
    const pAt = ` ${p.comments.toLowerCase()}`.indexOf(' p=');
    const policy = pAt < 0 ? '' : (p.comments.slice(pAt + 2).split(/[ \t]/)[0] ?? '').toLowerCase();
    results.push({ method: first.slice(0, eq).toLowerCase(), result: first.slice(eq + 1).toLowerCase(), props, policy });
  }
  return { authservId, results };
}

/** The Authentication-Results our own side wrote: from a trusted authserv-id, above the first
 * Received: line that none of `mtaNames` wrote. */
export function trustedResults(headers: Headers, authservIds: readonly string[], mtaNames: readonly string[]): AuthResults[] {
  if (authservIds.length === 0) return [];
  const trusted = new Set(authservIds.map((s) => s.toLowerCase()));
  const ours = new Set(mtaNames.map((n) => n.toLowerCase().replace(/\.$/, '')));
  const out: AuthResults[] = [];
  for (const f of headers.fields) {
    if (f.name === 'received') {
      const by = parseReceived(f.value).by;
      if (by === undefined || !ours.has(by)) break;
    } else if (f.name === 'authentication-results') {
      const ar = parseAuthResults(f.value);
      if (ar !== undefined && trusted.has(ar.authservId)) out.push(ar);
    }
  }
  return out;
}
