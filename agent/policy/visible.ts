// `challenge.require_visible_recipient`: whether the user's address (bare or tagged) is in To: or
// Cc:. Bcc-style mass mail names someone else there or no one. One bounded scan a header.

import type { Headers } from '../mail/header.js';

/** Characters that end an address's local part when reading backwards from its "@". */
const BEFORE = new Set(['<', '>', ' ', '\t', ',', ';', ':', '"', '(', ')', '[', ']']);

/** True when `address` (local@domain), or a tagged form local<delimiter>…@domain, appears in one
 * of the To: or Cc: fields. */
export function recipientVisible(headers: Headers, address: string, delimiter: string): boolean {
  const at = address.lastIndexOf('@');
  const local = address.slice(0, at).toLowerCase();
  const domain = address.slice(at).toLowerCase();
  for (const name of ['to', 'cc']) {
    for (const raw of headers.all(name)) {
      const v = raw.slice(0, 16_384).toLowerCase();
      for (let i = v.indexOf(domain); i >= 0; i = v.indexOf(domain, i + 1)) {
        const end = v[i + domain.length];
        if (end !== undefined && !BEFORE.has(end)) continue;
        let s = i;
        while (s > 0 && i - s < 64 && !BEFORE.has(v[s - 1] ?? ' ')) s--;
        const l = v.slice(s, i);
        if (l === local || l.startsWith(`${local}${delimiter}`)) return true;
      }
    }
  }
  return false;
}
