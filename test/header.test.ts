import test from 'ava';
import { cleanText, decodeWords, firstAddress, headerEnd, readHeaders } from '../agent/mail/header.js';

test('folded headers are unfolded and names folded to lower case', (t) => {
  const h = readHeaders(Buffer.from('Subject: one\r\n two\r\nX-A: 1\r\nx-a: 2\r\n\r\nbody\r\n'));
  t.is(h.get('subject'), 'one two');
  t.deepEqual(h.all('X-A'), ['1', '2']);
  t.is(h.bodyOffset, 'Subject: one\r\n two\r\nX-A: 1\r\nx-a: 2\r\n\r\n'.length);
});

test('a message without a blank line is all header', (t) => {
  const raw = Buffer.from('From: a@b.c\nSubject: x');
  const h = readHeaders(raw);
  t.is(h.get('subject'), 'x');
  t.is(h.bodyOffset, raw.length);
});

test('an empty message has no headers', (t) => {
  const h = readHeaders(Buffer.alloc(0));
  t.is(h.fields.length, 0);
});

test('the header read stops at the limit', (t) => {
  const raw = Buffer.from(`Subject: ${'x'.repeat(200_000)}\nFrom: late@example.com\n\nbody`);
  const h = readHeaders(raw, 1024);
  t.is(h.get('from'), undefined);
  t.is(headerEnd(raw, 1024).end, 1024);
  t.is(readHeaders(raw).get('from'), 'late@example.com');
});

test('8-bit and invalid UTF-8 header bytes never throw and keep every byte as Latin-1', (t) => {
  const raw = Buffer.concat([Buffer.from('Subject: caf'), Buffer.from([0xe9, 0xff, 0x00]), Buffer.from('\n\nx')]);
  t.is(readHeaders(raw).get('subject'), 'caf\u00e9\u00ff\u0000');
});

test('lines that are not header fields are skipped', (t) => {
  const h = readHeaders(Buffer.from('From bob@example.com Mon Nov 23 10:00:00 2026\n: nothing\nbad line\nSubject: ok\n\n'));
  t.deepEqual(h.fields.map((f) => f.name), ['subject']);
});

test('RFC 2047 words decode in B and Q, across charsets', (t) => {
  t.is(decodeWords('=?UTF-8?B?w6lsw6h2ZQ==?='), 'élève');
  t.is(decodeWords('=?iso-8859-1?Q?caf=E9_noir?='), 'café noir');
  t.is(decodeWords('=?utf-8?q?a?= =?utf-8?q?b?='), 'ab');
  t.is(decodeWords('=?x-unknown?q?a?='), '=?x-unknown?q?a?=');
});

test('clean text removes control characters, CR and LF among them', (t) => {
  t.is(cleanText('Hi\r\nBcc: evil@example.com'), 'Hi Bcc: evil@example.com');
  t.is(cleanText('=?utf-8?q?x=0D=0Ay?='), 'x y');
  t.is(cleanText('a'.repeat(300), 10).length, 10);
});

test('the first address of a From field is found in its usual forms', (t) => {
  t.is(firstAddress('"Bob, Jr." <bob@example.com>'), 'bob@example.com');
  t.is(firstAddress('bob@example.com (Bob)'), 'bob@example.com');
  t.is(firstAddress('undisclosed-recipients:;'), undefined);
});
