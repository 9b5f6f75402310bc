// When a confirmation request must not go out, and when a reply was written by a program: rules
// kept as data, applied by pure functions. Suppressed mail is still held, silently, for the user
// to review; the reason is stored with it, and a rule marked `suspect` (spam, forged) also keeps a
// confirmation from releasing it.

import { unwrapSrs } from '../mail/address.js';
import type { Headers } from '../mail/header.js';

/** What a program-wrote check looks at: the envelope sender and the header. */
export interface Written {
  /** The envelope sender as given ('' = null sender). */
  readonly sender: string;
  readonly headers: Headers;
}

export interface SuppressFacts extends Written {
  /** Its key, or undefined when it fails the strict address grammar. */
  readonly senderKey: string | undefined;
  /** The user's own address (lower case). */
  readonly own: string;
  /** authserv-ids whose Authentication-Results are trusted. */
  readonly authservIds: readonly string[];
}

/** One rule: the reason it gives (undefined = it does not apply), and whether that reason means
 * the mail is suspect: spam or forged, so that only the user may release it (never a
 * confirmation). A later check (authentication, blocklists, classifier) declares it the same way. */
export interface Rule<F> {
  readonly check: (f: F) => string | undefined;
  readonly suspect: boolean;
}

/** Local parts that belong to machines, not people (exact, lower case). */
const MACHINE_LOCALS = new Set([
  'mailer-daemon', 'mailer_daemon', 'mailerdaemon', 'mail-daemon', 'postmaster', 'hostmaster', 'abuse', 'daemon', 'root',
  'nobody', 'noreply', 'no-reply', 'no_reply', 'donotreply', 'do-not-reply', 'do_not_reply', 'bounce', 'bounces', 'notifications',
]);
/** Local-part shapes of list software and bounce handlers (ezmlm's VERP `list-return-N-user=host`
 * among them). */
const MACHINE_SHAPES: readonly RegExp[] = [/^owner-/, /-request$/, /-owner$/, /-bounces?(?:[+-]|$)/, /^bounces?[+-]/, /^no-?reply[+-]/, /-return-/];
/** First labels of domains that only bounce handlers send from (`…@bounces.example.com`). */
const MACHINE_DOMAIN_LABELS = new Set(['bounce', 'bounces', 'bounced']);

const LIST_HEADERS = /^(list-[a-z-]+|mailing-list|x-mailing-list|x-list|x-loop|x-ml-name)$/;

/** Precedence values that mark mail sent in bulk. */
const BULK = new Set(['bulk', 'junk', 'list']);

/** An address key that belongs to a machine; an SRS-wrapped sender is judged by the address inside. */
export function isMachineSender(key: string): boolean {
  let k: string | undefined = key;
  // SRS inside SRS is unwrapped once per layer; each layer is shorter, and four is plenty.
  for (let depth = 0; k !== undefined && depth < 4; depth++) {
    const at = k.lastIndexOf('@');
    const local = k.slice(0, at);
    const first = k.slice(at + 1).split('.')[0] ?? '';
    if (MACHINE_LOCALS.has(local) || MACHINE_SHAPES.some((r) => r.test(local)) || MACHINE_DOMAIN_LABELS.has(first)) return true;
    k = unwrapSrs(k);
  }
  return false;
}

/** RFC 3834: any Auto-Submitted value but `no` marks mail a program wrote, not a person. */
export function isAutoSubmitted(headers: Headers): boolean {
  const v = headers.get('auto-submitted');
  return v !== undefined && firstWord(v) !== 'no';
}

/** The first word of a header value, lower case: `bulk; x` and `bulk (comment)` give `bulk`. */
function firstWord(v: string): string {
  return /^\s*([a-z0-9-]*)/i.exec(v)?.[1]?.toLowerCase() ?? '';
}

/** "A program wrote this": the one rule both the challenge suppression and the confirmation check
 * use, so an answer that is never challenged also never confirms. First match gives the reason. */
export const PROGRAM_RULES: readonly ((m: Written) => string | undefined)[] = [
  (m) => (m.sender === '' || m.sender === '<>' ? 'null sender' : undefined),
  (m) => (isAutoSubmitted(m.headers) ? 'Auto-Submitted' : undefined),
  (m) => {
    const v = m.headers.get('precedence');
    const w = v === undefined ? '' : firstWord(v);
    return BULK.has(w) ? `Precedence: ${w}` : undefined;
  },
  (m) => (m.headers.has('x-autoreply') && firstWord(m.headers.get('x-autoreply') ?? '') !== 'no' ? 'X-Autoreply' : undefined),
  (m) => (m.headers.has('x-autorespond') ? 'X-Autorespond' : undefined),
  (m) => (m.headers.fields.some((x) => LIST_HEADERS.test(x.name)) ? 'mailing list' : undefined),
  (m) => (/^\s*multipart\/report\b/i.test(m.headers.get('content-type') ?? '') ? 'delivery or disposition report' : undefined),
];

/** Why a program (not a person) wrote this message, or undefined. */
export function programWrote(m: Written): string | undefined {
  for (const rule of PROGRAM_RULES) {
    const why = rule(m);
    if (why !== undefined) return why;
  }
  return undefined;
}

/** The suppression rules, first match gives the reason. */
export const RULES: readonly Rule<SuppressFacts>[] = [
  ...PROGRAM_RULES.slice(0, 1).map((check) => ({ check, suspect: false })),
  { check: (f) => (f.senderKey === undefined ? 'sender address is not a plain address' : undefined), suspect: false },
  { check: (f) => (f.senderKey !== undefined && isMachineSender(f.senderKey) ? 'automatic sender address' : undefined), suspect: false },
  { check: (f) => (f.senderKey === f.own ? 'your own address as sender' : undefined), suspect: false },
  ...PROGRAM_RULES.slice(1).map((check) => ({ check, suspect: false })),
  {
    check: (f) => (/^\s*yes\b/i.test(f.headers.get('x-spam-flag') ?? '') || /^\s*yes\b/i.test(f.headers.get('x-spam-status') ?? '') ? 'marked as spam' : undefined),
    suspect: true,
  },
  { check: (f) => (f.headers.all('received-spf').some((v) => /^\s*fail\b/i.test(v)) ? 'SPF fail' : undefined), suspect: true },
  {
    check: (f) => {
      if (f.authservIds.length === 0) return undefined;
      const trusted = new Set(f.authservIds.map((s) => s.toLowerCase()));
      for (const v of f.headers.all('authentication-results')) {
        const id = v.split(';')[0]?.trim().split(/\s+/)[0]?.toLowerCase();
        if (id === undefined || !trusted.has(id)) continue;
        if (/\bdmarc\s*=\s*fail\b/i.test(v)) return 'DMARC fail';
        if (/\bspf\s*=\s*fail\b/i.test(v)) return 'SPF fail';
      }
      return undefined;
    },
    suspect: true,
  },
];

export interface Suppression {
  /** The first rule's reason. */
  readonly why: string;
  /** True when any rule that applies marks the mail suspect (not only the first). */
  readonly suspect: boolean;
}

/** Why no confirmation request may go out for this message, and whether it is suspect; undefined
 * when a request may go out. */
export function suppression(f: SuppressFacts): Suppression | undefined {
  let why: string | undefined;
  let suspect = false;
  for (const rule of RULES) {
    if (why !== undefined && (suspect || !rule.suspect)) continue;
    const r = rule.check(f);
    if (r === undefined) continue;
    why ??= r;
    suspect ||= rule.suspect;
  }
  return why === undefined ? undefined : { why, suspect };
}
