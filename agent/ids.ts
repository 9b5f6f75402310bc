// Ids of held messages: 13 base32 characters, time-ordered (4 bytes of seconds, 4 random bytes),
// short enough that a confirm address stays within the 64 octets of a local part.

import { randomBytes } from 'node:crypto';
import { base32 } from './base32.js';

export function newId(now: number): string {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(Math.floor(now / 1000) >>> 0, 0);
  randomBytes(4).copy(b, 4);
  return base32(b);
}

export function isId(text: string): boolean {
  return /^[a-z2-7]{13}$/.test(text);
}
