// Which vouch home a recipient has: the `--homes` template (`/var/vmail/%d/%u/.vouch`) filled in
// from the address. Pure: the server checks that the folder is there.

import { isAbsolute, normalize } from 'node:path';
import { UsageError } from '../failure/failure.js';

/** The parts of a recipient address the template can name. */
export interface Recipient {
  /** The whole address as RCPT TO gave it. */
  readonly address: string;
  /** %u: the local part without the extension, lower case. */
  readonly user: string;
  /** %d: the domain, lower case. */
  readonly domain: string;
  /** %e: the extension after the first delimiter ('' when there is none), lower case (as Postfix
   * local(8) folds EXTENSION: vouch's tags are lower case for this reason). */
  readonly ext: string;
}

/** Splits `local+ext@domain` at the first delimiter; undefined for an address that has no
 * local part or domain, or whose parts could not safely name a folder. */
export function splitRecipient(address: string, delimiter: string): Recipient | undefined {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  const local = address.slice(0, at);
  const domain = address.slice(at + 1).toLowerCase();
  const cut = local.indexOf(delimiter);
  const user = (cut < 0 ? local : local.slice(0, cut)).toLowerCase();
  const ext = cut < 0 ? '' : local.slice(cut + delimiter.length).toLowerCase();
  if (!safePart(user) || !safePart(domain) || (ext !== '' && !safePart(ext))) return undefined;
  return Object.freeze({ address, user, domain, ext });
}

/** A value that can stand for one path component: no separator, no NUL or control character, not
 * `.` or `..`, not hidden. */
function safePart(v: string): boolean {
  // eslint-disable-next-line no-control-regex
  return v !== '' && v.length <= 255 && !/[/\\\u0000-\u001f\u007f]/.test(v) && !v.startsWith('.');
}

/** A checked `--homes` template: an absolute path that names %u (or %e, %d) and only those. */
export function parseTemplate(template: string): string {
  if (!isAbsolute(template)) throw new UsageError('--homes must be an absolute path like /var/vmail/%d/%u/.vouch');
  const unknown = /%[^ude%]/.exec(template) ?? /%$/.exec(template);
  if (unknown) throw new UsageError(`--homes: unknown placeholder ${unknown[0]} (use %u, %d, %e, %%)`);
  if (!template.includes('%u')) throw new UsageError('--homes must contain %u (the local part without its extension)');
  return template;
}

/** The home for a recipient: each placeholder replaced by its part (already checked to be one safe
 * path component), `%%` by `%`. */
export function homeFor(template: string, r: Recipient): string {
  const filled = template.replace(/%([ude%])/g, (_m, c: string) => (c === 'u' ? r.user : c === 'd' ? r.domain : c === 'e' ? r.ext : '%'));
  return normalize(filled);
}
