// Tagged addresses: the extension after the user's name and delimiter, signed with HMAC-SHA256 over
// a length-prefixed (version, purpose, fields…) under the home's 256-bit secret, truncated to 80
// bits, lower-case base32. MACs are checked in constant time before any I/O. (HMAC from sha256.ts:
// node:crypto would cost a cold delivery more than the rest of its work.)
//
//   confirm-<id>.<mac>      the reply address of one confirmation request (id + the challenged sender)
//   dated-<expiry>.<mac>    accepted from anyone until <expiry> (unix seconds)
//   sender-<mac>            accepted only from the sender (or `@domain`) it was made for
//   keyword-<word>.<mac>    accepted from anyone while <word> is not revoked

import { base32 } from './base32.js';
import { constantTimeEqual, hmacSha256 } from './sha256.js';

const VERSION = '1';
const MAC_BYTES = 10;
const MAC_CHARS = 16;

export type Tag =
  | { readonly purpose: 'confirm'; readonly id: string; readonly mac: string }
  | { readonly purpose: 'dated'; readonly expiry: number; readonly mac: string }
  | { readonly purpose: 'sender'; readonly mac: string }
  | { readonly purpose: 'keyword'; readonly word: string; readonly mac: string };

function field(text: string): Buffer {
  const bytes = Buffer.from(text, 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length, 0);
  return Buffer.concat([len, bytes]);
}

/** The MAC of (version, purpose, fields…), as base32 text. */
export function mac(key: Uint8Array, purpose: string, fields: readonly string[]): string {
  return base32(hmacSha256(key, [VERSION, purpose, ...fields].map(field)).subarray(0, MAC_BYTES));
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return constantTimeEqual(x, y);
}

const WORD = /^[a-z0-9][a-z0-9_]{0,23}$/;

export function isKeyword(word: string): boolean {
  return WORD.test(word);
}

/** Reads an extension as a tag (syntax only; the MAC is not checked here). Case is folded. */
export function parseTag(ext: string): Tag | undefined {
  const e = ext.toLowerCase();
  let m = /^confirm-([a-z2-7]{13})\.([a-z2-7]{16})$/.exec(e);
  if (m?.[1] && m[2]) return { purpose: 'confirm', id: m[1], mac: m[2] };
  m = /^dated-(\d{1,12})\.([a-z2-7]{16})$/.exec(e);
  if (m?.[1] && m[2]) return { purpose: 'dated', expiry: Number(m[1]), mac: m[2] };
  m = /^sender-([a-z2-7]{16})$/.exec(e);
  if (m?.[1]) return { purpose: 'sender', mac: m[1] };
  m = /^keyword-([a-z0-9_]{1,24})\.([a-z2-7]{16})$/.exec(e);
  if (m?.[1] && m[2] && isKeyword(m[1])) return { purpose: 'keyword', word: m[1], mac: m[2] };
  return undefined;
}

export function confirmTag(key: Uint8Array, id: string, senderKey: string): string {
  return `confirm-${id}.${mac(key, 'confirm', [id, senderKey])}`;
}

export function datedTag(key: Uint8Array, expiryMs: number): string {
  const expiry = String(Math.floor(expiryMs / 1000));
  return `dated-${expiry}.${mac(key, 'dated', [expiry])}`;
}

/** `who` is a sender key (bob@example.com) or a domain written `@example.com`. */
export function senderTag(key: Uint8Array, who: string): string {
  return `sender-${mac(key, 'sender', [who.toLowerCase()])}`;
}

export function keywordTag(key: Uint8Array, word: string): string {
  return `keyword-${word}.${mac(key, 'keyword', [word])}`;
}

/** Checks a tag's MAC. `senders` are the keys the mail could be from (for confirm and sender tags);
 * returns the one the tag is bound to, or true for tags bound to no sender; false when invalid or expired. */
export function verifyTag(key: Uint8Array, tag: Tag, senders: readonly string[], now: number): string | boolean {
  switch (tag.purpose) {
    case 'confirm': {
      for (const s of senders) if (same(tag.mac, mac(key, 'confirm', [tag.id, s]))) return s;
      return false;
    }
    case 'dated': {
      const ok = same(tag.mac, mac(key, 'dated', [String(tag.expiry)]));
      return ok && tag.expiry * 1000 > now;
    }
    case 'sender': {
      for (const s of senders) {
        if (same(tag.mac, mac(key, 'sender', [s]))) return s;
        const domain = `@${s.slice(s.lastIndexOf('@') + 1)}`;
        if (same(tag.mac, mac(key, 'sender', [domain]))) return s;
      }
      return false;
    }
    case 'keyword':
      return same(tag.mac, mac(key, 'keyword', [tag.word]));
  }
}

/** The full tagged address: `alice` + delimiter + tag + `@example.org`. Throws past 64 octets. */
export function taggedAddress(address: string, delimiter: string, tag: string): string {
  const at = address.lastIndexOf('@');
  const local = `${address.slice(0, at)}${delimiter}${tag}`;
  if (local.length > 64) throw new Error('the tagged local part would be longer than 64 octets');
  return `${local}@${address.slice(at + 1)}`;
}

export { MAC_CHARS };
