// The tag format, pinned by known answers, and property tests that random and altered tags are refused.
import test from 'ava';
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { base32 } from '../agent/tags/base32.js';
import { confirmTag, datedTag, keywordTag, mac, parseTag, senderTag, taggedAddress, verifyTag, type Tag } from '../agent/tags/tags.js';

const KEY = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
const NOW = Date.UTC(2026, 10, 23);
const BOB = 'bob@example.com';

/** The format written out a second time, independently: HMAC-SHA256 over 4-byte big-endian
 * length-prefixed fields (version "1", purpose, fields…), first 10 bytes, RFC 4648 base32 lower case. */
function reference(purpose: string, fields: string[]): string {
  const h = createHmac('sha256', KEY);
  for (const f of ['1', purpose, ...fields]) {
    const b = Buffer.from(f, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    h.update(len).update(b);
  }
  return base32(h.digest().subarray(0, 10));
}

test('base32 is RFC 4648 in lower case without padding', (t) => {
  t.is(base32(Buffer.from('')), '');
  t.is(base32(Buffer.from('f')), 'my');
  t.is(base32(Buffer.from('fo')), 'mzxq');
  t.is(base32(Buffer.from('foo')), 'mzxw6');
  t.is(base32(Buffer.from('foob')), 'mzxw6yq');
  t.is(base32(Buffer.from('fooba')), 'mzxw6ytb');
  t.is(base32(Buffer.from('foobar')), 'mzxw6ytboi');
});

test('known answers pin the format of every kind of tag', (t) => {
  t.is(confirmTag(KEY, 'abcdefghijklm', BOB), 'confirm-abcdefghijklm.ef65nskn6cf7vsa6');
  t.is(datedTag(KEY, 1_800_000_000_000), 'dated-1800000000.y3zjapfsi5ozs4en');
  t.is(senderTag(KEY, BOB), 'sender-bi4ejp4cuxctntj4');
  t.is(senderTag(KEY, '@example.com'), 'sender-nopj4iperoppurjb');
  t.is(keywordTag(KEY, 'shop'), 'keyword-shop.uikusm5264guwgqj');
});

test('the MAC is HMAC-SHA256 over length-prefixed fields, truncated to 80 bits', (t) => {
  t.is(mac(KEY, 'confirm', ['abcdefghijklm', BOB]), reference('confirm', ['abcdefghijklm', BOB]));
  t.is(mac(KEY, 'keyword', ['shop']), reference('keyword', ['shop']));
  t.is(mac(KEY, 'confirm', ['abcdefghijklm', BOB]).length, 16);
  // Length prefixes keep field boundaries apart: ("ab", "c") and ("a", "bc") differ.
  t.not(mac(KEY, 'x', ['ab', 'c']), mac(KEY, 'x', ['a', 'bc']));
});

test('a confirm tag verifies only for the sender it was made for, and names that sender', (t) => {
  const tag = parseTag(confirmTag(KEY, 'abcdefghijklm', BOB));
  if (!tag) return t.fail('tag did not parse');
  t.is(verifyTag(KEY, tag, ['carol@example.net', BOB], NOW), BOB);
  t.false(verifyTag(KEY, tag, ['carol@example.net'], NOW));
  t.false(verifyTag(KEY, tag, [], NOW));
  t.false(verifyTag(Buffer.alloc(32, 7), tag, [BOB], NOW));
});

test('tags survive case folding by the MTA', (t) => {
  for (const made of [confirmTag(KEY, 'abcdefghijklm', BOB), datedTag(KEY, NOW + 86_400_000), senderTag(KEY, BOB), keywordTag(KEY, 'shop')]) {
    const tag = parseTag(made.toUpperCase());
    if (!tag) return t.fail(`${made} did not parse upper-cased`);
    t.not(verifyTag(KEY, tag, [BOB], NOW), false, made);
  }
});

test('a dated tag works until its expiry and not after', (t) => {
  const tag = parseTag(datedTag(KEY, NOW + 1000)) as Tag;
  t.true(verifyTag(KEY, tag, [], NOW));
  t.false(verifyTag(KEY, tag, [], NOW + 1000));
  t.false(verifyTag(KEY, tag, [], NOW + 5 * 86_400_000));
});

test('a sender tag made for a domain accepts any sender of that domain, and no other', (t) => {
  const tag = parseTag(senderTag(KEY, '@example.com')) as Tag;
  t.is(verifyTag(KEY, tag, ['dave@example.com'], NOW), 'dave@example.com');
  t.false(verifyTag(KEY, tag, ['dave@example.net'], NOW));
  t.false(verifyTag(KEY, tag, ['dave@sub.example.com'], NOW));
});

test('parseTag reads only the four shapes and nothing else', (t) => {
  t.deepEqual(parseTag('confirm-abcdefghijklm.ef65nskn6cf7vsa6'), { purpose: 'confirm', id: 'abcdefghijklm', mac: 'ef65nskn6cf7vsa6' });
  t.deepEqual(parseTag('dated-1800000000.y3zjapfsi5ozs4en'), { purpose: 'dated', expiry: 1_800_000_000, mac: 'y3zjapfsi5ozs4en' });
  t.deepEqual(parseTag('Keyword-Shop.UIKUSM5264GUWGQJ'), { purpose: 'keyword', word: 'shop', mac: 'uikusm5264guwgqj' });
  for (const bad of ['', 'confirm', 'confirm-abc.def', 'confirm-abcdefghijklm.ef65nskn6cf7vsa6x', 'confirm-abcdefghijklm.ef65nskn6cf7vsa1',
    'dated-.y3zjapfsi5ozs4en', 'dated-1e9.y3zjapfsi5ozs4en', 'sender-', 'keyword-_x.uikusm5264guwgqj', 'keyword-a.b', 'lists', 'confirm-abcdefghijklm:ef65nskn6cf7vsa6']) {
    t.is(parseTag(bad), undefined, bad);
  }
});

test('the whole confirm address fits the 64 octets of a local part; longer ones are refused', (t) => {
  const a = taggedAddress('alice@example.org', '-', confirmTag(KEY, 'abcdefghijklm', BOB));
  t.is(a, 'alice-confirm-abcdefghijklm.ef65nskn6cf7vsa6@example.org');
  t.true(a.indexOf('@') <= 64);
  t.is(taggedAddress('alice@example.org', '+', 'sender-bi4ejp4cuxctntj4'), 'alice+sender-bi4ejp4cuxctntj4@example.org');
  t.throws(() => taggedAddress(`${'a'.repeat(30)}@example.org`, '-', confirmTag(KEY, 'abcdefghijklm', BOB)));
});

// ---- properties

const b32 = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz234567'.split(''));
const b32s = (n: number) => fc.array(b32, { minLength: n, maxLength: n }).map((a) => a.join(''));

test('random confirm tags are refused', (t) => {
  fc.assert(
    fc.property(b32s(13), b32s(16), fc.emailAddress(), (id, m, sender) => {
      const tag = parseTag(`confirm-${id}.${m}`);
      return tag !== undefined && verifyTag(KEY, tag, [sender.toLowerCase(), BOB], NOW) === false;
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

test('random dated, sender and keyword tags are refused', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 99_999_999_999 }), b32s(16), fc.stringMatching(/^[a-z0-9][a-z0-9_]{0,23}$/), (expiry, m, word) => {
      const tags = [parseTag(`dated-${expiry}.${m}`), parseTag(`sender-${m}`), parseTag(`keyword-${word}.${m}`)];
      return tags.every((tag) => tag !== undefined && verifyTag(KEY, tag, [BOB], 0) === false);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});

/** Flips one bit of one character of a valid tag, keeping it within the characters a tag may hold. */
function flipped(tag: string, at: number, bit: number): string {
  const i = at % tag.length;
  const c = tag.charCodeAt(i) ^ (1 << bit % 7);
  return tag.slice(0, i) + String.fromCharCode(c) + tag.slice(i + 1);
}

test('a valid tag with any one bit flipped is refused (or no longer parses)', (t) => {
  const valid = [confirmTag(KEY, 'abcdefghijklm', BOB), datedTag(KEY, NOW + 86_400_000), senderTag(KEY, BOB), keywordTag(KEY, 'shop')];
  fc.assert(
    fc.property(fc.constantFrom(...valid), fc.nat(), fc.nat({ max: 6 }), (good, at, bit) => {
      const bad = flipped(good, at, bit);
      if (bad.toLowerCase() === good) return true; // a case flip is the same tag, by design
      const tag = parseTag(bad);
      return tag === undefined || verifyTag(KEY, tag, [BOB], NOW) === false;
    }),
    { numRuns: 3000 },
  );
  t.pass();
});

test('parseTag never throws, whatever the extension', (t) => {
  fc.assert(fc.property(fc.string({ maxLength: 80 }), (s) => {
    parseTag(s);
    return true;
  }));
  t.pass();
});
