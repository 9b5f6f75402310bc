// Why a message is held, said the way a person would: each stored (reason, challenge state, note)
// becomes a kind with a key (the filter in the URL), a label (the row's headline) and a family
// that decides what the page offers (send the request now, warn before blacklisting). Kinds are
// data: a reason or note this table does not know (a new check's) shows as itself, no code needed.

import type { ChallengeState, Held, Signals, WhyKey } from '../agent/store/store.js';

export type Family = 'asked' | 'limit' | 'failed' | 'machine' | 'suspect' | 'other';

export interface Kind {
  readonly key: string;
  readonly label: string;
  readonly family: Family;
}

/** Notes of suppressed requests, by what they mean. */
const NOTES: Readonly<Record<string, Kind>> = {
  'mailing list': { key: 'list', label: 'Mailing list', family: 'machine' },
  'Precedence: list': { key: 'list', label: 'Mailing list', family: 'machine' },
  'null sender': { key: 'bounce', label: 'Bounce (<> sender)', family: 'machine' },
  'Precedence: bulk': { key: 'bulk', label: 'Bulk mail', family: 'machine' },
  'Precedence: junk': { key: 'bulk', label: 'Bulk mail', family: 'machine' },
  'automatic sender address': { key: 'automatic', label: 'Automatic sender', family: 'machine' },
  'Auto-Submitted': { key: 'automatic', label: 'Automatic sender', family: 'machine' },
  'sender already challenged recently': { key: 'asked-recently', label: 'Asked recently', family: 'limit' },
  'hourly cap for the sender domain': { key: 'limit', label: 'Hourly limit', family: 'limit' },
  'global hourly cap': { key: 'limit', label: 'Hourly limit', family: 'limit' },
  'marked as spam': { key: 'spam', label: 'Marked as spam', family: 'suspect' },
  'SPF fail': { key: 'auth', label: 'Failed authentication', family: 'suspect' },
  'DMARC fail': { key: 'auth', label: 'Failed authentication', family: 'suspect' },
  'challenges are turned off': { key: 'off', label: 'Requests are turned off', family: 'other' },
  'message larger than max_size': { key: 'large', label: 'Too large to ask', family: 'other' },
  'your own address as sender': { key: 'own', label: 'Your own address as sender', family: 'other' },
  'sender address is not a plain address': { key: 'bad-address', label: 'Unusable sender address', family: 'machine' },
};

/** The kind of one stored reason. */
export function kindOf(held: WhyKey | Held): Kind {
  const w: WhyKey = 'note' in held ? held : { reason: held.reason, challenge: held.challenge, note: held.challengeNote };
  if (w.reason !== 'unknown sender' && w.reason !== '') {
    return { key: `r-${slug(w.reason)}`, label: capital(w.reason), family: /spam|forg|auth|block/i.test(w.reason) ? 'suspect' : 'other' };
  }
  switch (w.challenge as ChallengeState) {
    case 'sent':
      return { key: 'asked', label: 'Request sent', family: 'asked' };
    case 'pending':
    case 'sending':
      return { key: 'asking', label: 'Request being sent', family: 'asked' };
    case 'failed':
      return { key: 'failed', label: 'Request failed', family: 'failed' };
    default: {
      const known = NOTES[w.note];
      if (known) return known;
      if (w.note === '') return { key: 'no-request', label: 'No request sent', family: 'other' };
      return { key: `n-${slug(w.note)}`, label: `No request: ${w.note}`, family: /spam|forg|auth|block|dnsbl|listed/i.test(w.note) ? 'suspect' : 'other' };
    }
  }
}

/** Whether the page offers "send the request now" for this kind: held back by a limit, or failed. */
export function canAskNow(k: Kind): boolean {
  return k.family === 'limit' || k.family === 'failed';
}

/** Whether blacklisting the envelope sender of such mail is likely a mistake (a list's, a
 * bounce's, a robot's address): the page asks first and offers the From address instead. */
export function riskyToBlock(k: Kind, h: Pick<Held, 'sender'>): boolean {
  return k.family === 'machine' || h.sender === '';
}

/** The filter chips: the kinds of the held mail with their counts, most first; and for each kind
 * key the stored triples it stands for (the store filters by those). */
export function kinds(rows: readonly (WhyKey & { n: number })[]): { list: (Kind & { n: number })[]; keys: Map<string, WhyKey[]> } {
  const byKey = new Map<string, Kind & { n: number }>();
  const keys = new Map<string, WhyKey[]>();
  for (const r of rows) {
    const k = kindOf(r);
    const seen = byKey.get(k.key);
    byKey.set(k.key, { ...k, n: (seen?.n ?? 0) + r.n });
    keys.set(k.key, [...(keys.get(k.key) ?? []), { reason: r.reason, challenge: r.challenge, note: r.note }]);
  }
  return { list: [...byKey.values()].sort((a, b) => b.n - a.n || a.label.localeCompare(b.label)), keys };
}

/** The row's headline detail: when the request went, to whom, and when the mail expires. */
export function detail(h: Held, k: Kind, lifetime: number, fmt: (ms: number) => string): string {
  const expires = `expires ${fmt(h.received + lifetime)}`;
  if (k.key === 'asked') return `sent ${fmt(h.received)} to ${h.sender || '<>'}, no reply yet · ${expires}`;
  if (k.family === 'failed') return `${h.challengeNote || 'not sent'} · ${expires}`;
  if (k.family === 'limit') return `request held back · ${expires}`;
  if (h.challenge === 'suppressed' || h.challenge === 'none') return `no request sent · ${expires}`;
  return expires;
}

/** Short badges for what the checks found (signals), e.g. `spf: fail`; shapes other helpers add
 * are shown by their most telling field, or by name. */
export function signalBadges(signals: Signals): string[] {
  const out: string[] = [];
  for (const [name, v] of Object.entries(signals)) {
    if (out.length >= 5) break;
    let text: string | undefined;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') text = String(v);
    else if (v !== null && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      const f = ['verdict', 'result', 'status', 'action', 'list'].find((x) => typeof o[x] === 'string' || typeof o[x] === 'number');
      if (f !== undefined) text = String(o[f]);
    }
    out.push(`${name}${text !== undefined ? `: ${text}` : ''}`.slice(0, 60));
  }
  return out;
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'other';
}

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
