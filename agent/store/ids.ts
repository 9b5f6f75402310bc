// Ids of held messages: 13 base32 characters, time-ordered (4 bytes of seconds, 4 random bytes),
// short enough that a confirm address stays within the 64 octets of a local part.

import { base32 } from '../tags/base32.js';

/** A new id for a message received at `now`. The random half only has to make ids unique (the
 * store retries on a clash); nothing rests on it being unguessable: a confirm address carries a
 * MAC, and the review page needs a login. So Math.random, not node:crypto, whose load would cost a
 * cold delivery 2.5 ms. */
export async function newId(now: number): Promise<string> {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(now / 1000) >>> 0, 0);
  b.writeUInt32BE(Math.floor(Math.random() * 0x1_0000_0000) >>> 0, 4);
  return base32(b);
}

export function isId(text: string): boolean {
  return /^[a-z2-7]{13}$/.test(text);
}
