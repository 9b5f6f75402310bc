// Hostile mail: named worst cases (deep nesting, lost boundaries, giant lines, countless parts, huge
// base64, broken encoded words, NUL bytes, mixed line endings, no body, no headers) and fast-check
// arbitraries that generate MIME trees or mutate realistic fixtures.

import fc from 'fast-check';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers.js';

export interface Case {
  readonly name: string;
  readonly bytes: Buffer;
}

export interface Scale {
  /** Multipart nesting depth. */
  readonly deep: number;
  /** Number of tiny parts in one message. */
  readonly parts: number;
  /** Bytes of base64 text in one part. */
  readonly base64: number;
  /** Length of one header line. */
  readonly headerLine: number;
  /** Number of header fields. */
  readonly headers: number;
}

export function fixtures(): Buffer[] {
  const dir = join(ROOT, 'test', 'stress', 'fixtures');
  return readdirSync(dir).filter((f) => f.endsWith('.eml')).sort().map((f) => readFileSync(join(dir, f)));
}

const HEAD = 'From: Mallory <mallory@example.com>\nTo: alice@example.org\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n';
const b = (s: string) => Buffer.from(s, 'latin1');

/** One part of `n` bytes of base64 text, 76 characters a line, without building a string that big. */
function base64Block(n: number): Buffer {
  const line = Buffer.from(`${Buffer.alloc(57, 0xa5).toString('base64')}\n`);
  return Buffer.alloc(Math.max(line.length, n - (n % line.length)), line);
}

export function nastyCases(s: Scale): Case[] {
  const nested: string[] = [`${HEAD}Subject: nested ${s.deep} deep\nContent-Type: multipart/mixed; boundary="b0"\n\n`];
  for (let i = 0; i < s.deep; i++) nested.push(`--b${i}\nContent-Type: multipart/mixed; boundary="b${i + 1}"\n\n`);
  nested.push(`--b${s.deep}\nContent-Type: text/plain\n\nthe bottom\n`);
  for (let i = s.deep; i >= 0; i--) nested.push(`--b${i}--\n`);

  const dup: string[] = [`${HEAD}Subject: one boundary at every level\nContent-Type: multipart/mixed; boundary="dup"\n\n`];
  for (let i = 0; i < 200; i++) dup.push(`--dup\nContent-Type: multipart/mixed; boundary="dup"\n\n--dup\n`);
  dup.push('--dup--\n--dup--\n');

  const tiny = [`${HEAD}Subject: ${s.parts} tiny parts\nContent-Type: multipart/mixed; boundary="t"\n\n`];
  tiny.push('--t\nContent-Type: text/plain\n\nx\n'.repeat(s.parts), '--t--\n');

  const encodedGarbage = [
    '=?utf-8?B?####?=', '=?bogus-charset?Q?=ZZ=?=', '=?utf-8?Q?unterminated', '=??B?AAAA?=', '=?utf-8*en?b?w5w=?=',
    '=?UTF-7?B?K0FHRUFHRS0=?=', '=?utf-16?B?2D3eAA==?=', `=?utf-8?B?${'A'.repeat(100_000)}?=`, '=?iso-2022-jp?B?GyRCJUYlOSVIGyhC?=',
    '=?x-\u00ff?q?\u0000?=',
  ].join(' ');

  return [
    { name: `multipart nested ${s.deep} deep`, bytes: b(nested.join('')) },
    { name: 'a declared boundary that never appears', bytes: b(`${HEAD}Subject: lost\nContent-Type: multipart/mixed; boundary="never"\n\n--other\nContent-Type: text/plain\n\nhi\n--other--\n`) },
    { name: 'the same boundary at 200 nested levels, closed twice', bytes: b(dup.join('')) },
    { name: 'a multipart that is never closed, with an empty boundary', bytes: b(`${HEAD}Subject: open\nContent-Type: multipart/mixed; boundary=""\n\n--\nContent-Type: text/plain\n\nopen\n--\n\n`) },
    { name: 'a boundary of 2,000 characters', bytes: b(`${HEAD}Subject: long boundary\nContent-Type: multipart/mixed; boundary="${'q'.repeat(2000)}"\n\n--${'q'.repeat(2000)}\n\nx\n--${'q'.repeat(2000)}--\n`) },
    { name: `a header line of ${s.headerLine} bytes`, bytes: b(`${HEAD}Subject: ${'x'.repeat(s.headerLine)}\n\nbody\n`) },
    { name: `a folded header of ${s.headerLine} bytes`, bytes: b(`${HEAD}Subject: start\n${' more\n'.repeat(Math.ceil(s.headerLine / 6))}\nbody\n`) },
    { name: `${s.headers} header fields and no end of header`, bytes: b(`${HEAD}${'X-Filler: some value here\n'.repeat(s.headers)}Subject: late\n`) },
    { name: `${s.parts} tiny parts`, bytes: b(tiny.join('')) },
    { name: `${s.base64} bytes of base64`, bytes: Buffer.concat([b(`${HEAD}Subject: big attachment\nContent-Type: multipart/mixed; boundary="a"\n\n--a\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n`), base64Block(s.base64), b('--a--\n')]) },
    { name: 'broken RFC 2047 encoded words', bytes: b(`${HEAD.replace('Mallory', encodedGarbage)}Subject: ${encodedGarbage}\nContent-Type: text/plain; charset="=?utf-8?B?!!?="; name="=?utf-8?Q?=00?="\n\nbody\n`) },
    { name: 'NUL bytes in header names, values and body', bytes: b(`${HEAD}Sub\0ject: a\0b\nX-\0: \0\0\0\n\n\0body\0with\0nuls\0\n`) },
    { name: 'mixed line endings', bytes: b(`From: x@example.com\r\nTo: alice@example.org\rSubject: mixed\n\rX-A: 1\r\n\n\r\nbody\rline\n\rline\r\n`) },
    { name: 'bare CR line endings only', bytes: b('From: x@example.com\rTo: alice@example.org\rSubject: cr\r\rbody\r') },
    { name: 'no body and no final newline', bytes: b(`${HEAD}Subject: headers only`) },
    { name: 'no headers', bytes: b('\nthis message has no header block at all\n') },
    { name: 'no header block, just text', bytes: b('hello alice\nthis is not a header\n\nnor this\n') },
    { name: 'an empty message', bytes: Buffer.alloc(0) },
    { name: 'a lone newline', bytes: b('\n') },
    { name: '64 KB of binary garbage', bytes: Buffer.from(Array.from({ length: 65_536 }, (_, i) => (i * 7919 + (i >> 3)) & 0xff)) },
    { name: 'a 4 MB line without a newline', bytes: Buffer.concat([b(`${HEAD}Subject: one line\n\n`), Buffer.alloc(4 << 20, 0x61)]) },
    { name: 'an invalid charset and transfer encoding', bytes: b(`${HEAD}Subject: charset\nContent-Type: text/plain; charset="x-unknown-\u00ff"\nContent-Transfer-Encoding: quoted-unreadable\n\n=ZZ=\n=\n`) },
    { name: 'message/rfc822 nested 1,000 deep', bytes: b(`${'Content-Type: message/rfc822\nSubject: inner\n\n'.repeat(1000)}From: x@example.com\n\ncore\n`) },
    { name: 'quoted-printable soft breaks forever', bytes: b(`${HEAD}Subject: qp\nContent-Transfer-Encoding: quoted-printable\n\n${'=\n'.repeat(200_000)}end\n`) },
    { name: 'our own Delivered-To: a loop', bytes: b(`Delivered-To: alice@example.org\n${HEAD}Subject: loop\n\nbody\n`) },
  ];
}

// ---- fast-check arbitraries

const NAMES = ['From', 'To', 'Cc', 'Subject', 'Date', 'Message-ID', 'Content-Type', 'Content-Transfer-Encoding', 'Content-Disposition',
  'MIME-Version', 'Received', 'Delivered-To', 'Return-Path', 'List-Id', 'Precedence', 'Auto-Submitted', 'Reply-To', 'X-Spam'];
const CHARSETS = ['utf-8', 'iso-8859-1', 'windows-1252', 'utf-16', 'bogus', '', 'UTF-7', 'shift_jis'];

const text = (max: number) => fc.string({ unit: 'binary', maxLength: max });
const encodedWord = fc
  .tuple(fc.constantFrom(...CHARSETS), fc.constantFrom('B', 'Q', 'b', 'x'), fc.oneof(fc.base64String({ maxLength: 40 }), text(30)))
  .map(([cs, e, p]) => `=?${cs}?${e}?${p}?=`);
const headerName = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...NAMES) }, { weight: 1, arbitrary: text(20) });
const headerValue = fc.oneof(text(120), encodedWord, fc.array(encodedWord, { maxLength: 4 }).map((w) => w.join(' ')), fc.emailAddress());
const header = fc.tuple(headerName, headerValue).map(([n, v]) => `${n}: ${v}`);

interface Part {
  readonly lines: string[];
}

const leaf: fc.Arbitrary<Part> = fc
  .record({
    type: fc.constantFrom('text/plain', 'text/html', 'application/octet-stream', 'message/rfc822', 'image/png', ''),
    cte: fc.constantFrom('', '7bit', '8bit', 'base64', 'quoted-printable', 'x-uuencode', 'binary'),
    charset: fc.constantFrom(...CHARSETS),
    body: fc.oneof(text(400), fc.base64String({ maxLength: 400 }), fc.uint8Array({ maxLength: 400 }).map((u) => Buffer.from(u).toString('latin1'))),
  })
  .map((p) => ({ lines: [`Content-Type: ${p.type}; charset="${p.charset}"`, `Content-Transfer-Encoding: ${p.cte}`, '', p.body] }));

const { part } = fc.letrec<{ part: Part }>((tie) => ({
  part: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    leaf,
    fc
      .record({
        boundary: fc.oneof(fc.constantFrom('b', 'b', '=_x', ''), text(12)),
        wrong: fc.boolean(),
        children: fc.array(tie('part'), { maxLength: 5 }),
        closed: fc.boolean(),
        preamble: text(40),
      })
      .map((m) => {
        const used = m.wrong ? `${m.boundary}z` : m.boundary;
        const lines = [`Content-Type: multipart/mixed; boundary="${m.boundary}"`, '', m.preamble];
        for (const c of m.children) lines.push(`--${used}`, ...c.lines);
        if (m.closed) lines.push(`--${used}--`);
        return { lines };
      }),
  ),
}));

function endings(lines: readonly string[], eol: string, pick: () => number): string {
  if (eol !== 'mixed') return lines.join(eol);
  const kinds = ['\n', '\r\n', '\r', '\n\r'];
  return lines.map((l) => l + (kinds[Math.floor(pick() * kinds.length)] ?? '\n')).join('');
}

/** Messages built from scratch: random headers over a random MIME tree, random line endings. */
export const generated: fc.Arbitrary<Buffer> = fc
  .record({
    headers: fc.array(header, { maxLength: 25 }),
    tree: part,
    blank: fc.boolean(),
    eol: fc.constantFrom('\n', '\r\n', 'mixed'),
    seed: fc.integer(),
  })
  .map((m) => {
    let s = m.seed;
    const pick = () => ((s = (s * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const lines = [...m.headers, ...(m.blank ? [] : m.tree.lines.slice(0, 1)), ...m.tree.lines.slice(m.blank ? 0 : 1)];
    return Buffer.from(endings(lines, m.eol, pick), 'latin1');
  });

type Mutation =
  | { readonly op: 'flip'; readonly at: number; readonly byte: number }
  | { readonly op: 'nul'; readonly at: number }
  | { readonly op: 'cut'; readonly at: number; readonly len: number }
  | { readonly op: 'copy'; readonly at: number; readonly len: number; readonly times: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'eol'; readonly to: string }
  | { readonly op: 'insert'; readonly at: number; readonly text: string };

const where = fc.double({ min: 0, max: 1, noNaN: true });
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: where, byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('nul' as const), at: where }),
  fc.record({ op: fc.constant('cut' as const), at: where, len: fc.integer({ min: 1, max: 2000 }) }),
  fc.record({ op: fc.constant('copy' as const), at: where, len: fc.integer({ min: 1, max: 500 }), times: fc.integer({ min: 1, max: 50 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: where }),
  fc.record({ op: fc.constant('eol' as const), to: fc.constantFrom('\n', '\r\n', '\r', '\n\r') }),
  fc.record({
    op: fc.constant('insert' as const),
    at: where,
    text: fc.oneof(
      fc.constantFrom('\n--=_alt_42\n', '\n--mix--\n', '\n--alt\n', '\n\n', 'Content-Type: multipart/mixed; boundary="mix"\n', '=?utf-8?B?', '\0', '\r'),
      encodedWord,
      header.map((h) => `\n${h}\n`),
    ),
  }),
);

function mutate(base: Buffer, ms: readonly Mutation[]): Buffer {
  let buf = base;
  for (const m of ms) {
    const at = 'at' in m ? Math.floor(m.at * buf.length) : 0;
    switch (m.op) {
      case 'flip':
        buf = Buffer.from(buf);
        if (at < buf.length) buf[at] = m.byte;
        break;
      case 'nul':
        buf = Buffer.concat([buf.subarray(0, at), Buffer.alloc(1), buf.subarray(at)]);
        break;
      case 'cut':
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(at + m.len)]);
        break;
      case 'copy': {
        const piece = buf.subarray(at, at + m.len);
        buf = Buffer.concat([buf.subarray(0, at), ...Array.from({ length: m.times }, () => piece), buf.subarray(at)]);
        break;
      }
      case 'truncate':
        buf = buf.subarray(0, at);
        break;
      case 'eol':
        buf = Buffer.from(buf.toString('latin1').replace(/\r?\n/g, m.to), 'latin1');
        break;
      case 'insert':
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from(m.text, 'latin1'), buf.subarray(at)]);
        break;
    }
  }
  return buf;
}

/** Realistic fixtures, each broken by one to eight mutations. */
export function mutated(bases: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.tuple(fc.constantFrom(...bases), fc.array(mutation, { minLength: 1, maxLength: 8 })).map(([base, ms]) => mutate(base, ms));
}

export function hostile(bases: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.oneof(generated, mutated(bases));
}
