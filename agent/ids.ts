// Ids of held messages: 13 base32 characters, time-ordered (4 bytes of seconds, 4 random bytes),
// short enough that a confirm address stays within the 64 octets of a local part.

import { base32 } from './base32.js';

/** A new id for a message received at `now`. node:crypto is loaded here, on first use, not when the
 * store is: a delivery opens the store first and loads node:crypto while SQLite opens the file. */
export async function newId(now: number): Promise<string> {
  const { randomBytes } = await import('node:crypto');
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(now / 1000) >>> 0, 0);
  randomBytes(4).copy(b, 4);
  return base32(b);
}

export function isId(text: string): boolean {
  return /^[a-z2-7]{13}$/.test(text);
}
