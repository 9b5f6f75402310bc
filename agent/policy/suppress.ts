// When a confirmation request must not go out: rules kept as data, applied by a pure function.
// Suppressed mail is still held, silently, for the user to review; the reason is stored with it.

import type { Headers } from '../mail/header.js';

export interface SuppressFacts {
  /** The envelope sender as given ('' = null sender). */
  readonly sender: string;
  /** Its key, or undefined when it fails the strict address grammar. */
  readonly senderKey: string | undefined;
  /** The user's own address (lower case). */
  readonly own: string;
  readonly headers: Headers;
  /** authserv-ids whose Authentication-Results are trusted. */
  readonly authservIds: readonly string[];
}

/** Local parts that belong to machines, not people (exact, lower case). */
const MACHINE_LOCALS = new Set([
  'mailer-daemon', 'mailerdaemon', 'mail-daemon', 'postmaster', 'hostmaster', 'abuse', 'daemon', 'root', 'nobody',
  'noreply', 'no-reply', 'no_reply', 'donotreply', 'do-not-reply', 'do_not_reply', 'bounce', 'bounces', 'notifications',
]);
/** Local-part shapes of list software and bounce handlers. */
const MACHINE_SHAPES: readonly RegExp[] = [/^owner-/, /-request$/, /-owner$/, /-bounces?(?:[+-]|$)/, /^bounces?[+-]/, /^no-?reply[+-]/];

const LIST_HEADERS = /^(list-[a-z-]+|mailing-list|x-mailing-list|x-list|x-loop|x-ml-name)$/;

type Rule = (f: SuppressFacts) => string | undefined;

/** RFC 3834: any Auto-Submitted value but `no` marks mail a program wrote, not a person. */
export function isAutoSubmitted(headers: Headers): boolean {
  const v = headers.get('auto-submitted');
  return v !== undefined && v.split(';')[0]?.trim().toLowerCase() !== 'no';
}

/** The rules, first match wins; each returns the reason shown to the user. */
export const RULES: readonly Rule[] = [
  (f) => (f.sender === '' || f.sender === '<>' ? 'null sender' : undefined),
  (f) => (f.senderKey === undefined ? 'sender address is not a plain address' : undefined),
  (f) => {
    const local = (f.senderKey ?? '').slice(0, (f.senderKey ?? '').lastIndexOf('@'));
    return MACHINE_LOCALS.has(local) || MACHINE_SHAPES.some((r) => r.test(local)) ? 'automatic sender address' : undefined;
  },
  (f) => (f.senderKey === f.own ? 'your own address as sender' : undefined),
  (f) => (isAutoSubmitted(f.headers) ? 'Auto-Submitted' : undefined),
  (f) => {
    const v = f.headers.get('precedence')?.trim().toLowerCase();
    return v === 'bulk' || v === 'junk' || v === 'list' ? `Precedence: ${v}` : undefined;
  },
  (f) => {
    const h = f.headers.fields.find((x) => LIST_HEADERS.test(x.name));
    return h ? 'mailing list' : undefined;
  },
  (f) => (/^\s*yes\b/i.test(f.headers.get('x-spam-flag') ?? '') || /^\s*yes\b/i.test(f.headers.get('x-spam-status') ?? '') ? 'marked as spam' : undefined),
  (f) => (f.headers.all('received-spf').some((v) => /^\s*fail\b/i.test(v)) ? 'SPF fail' : undefined),
  (f) => {
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
];

/** Why no confirmation request may go out for this message, or undefined when one may. */
export function suppression(f: SuppressFacts): string | undefined {
  for (const rule of RULES) {
    const why = rule(f);
    if (why !== undefined) return why;
  }
  return undefined;
}
