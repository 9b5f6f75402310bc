// The mailboxes `vouch learn` reads: an mbox written the way the learner writes one for bogofilter
// (mboxrd) reads back message for message, byte for byte, whatever `From ` lines the bodies hold;
// and the reading is linear in the size of the file.

import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mboxOf } from '../agent/classify/bogofilter.js';
import { filesIn, messagesInFile } from '../agent/classify/mailbox.js';

const dir = mkdtempSync(join(tmpdir(), 'vouch-mbox-'));
let n = 0;

/** A message: lines that an mbox must take care of, ending with a newline. */
const line = fc.oneof(
  fc.constantFrom('From here on', '>From quoted', '>>From twice', 'From ', '', 'Subject: x', 'text', '\r', 'From: header-like'),
  fc.string({ maxLength: 20 }).map((s) => s.replace(/\n/g, ' ')),
);
const messageArb = fc.array(line, { minLength: 1, maxLength: 12 }).map((ls) => Buffer.from(`${['Subject: t', ...ls].join('\n')}\n`, 'latin1'));

test('messages written as an mbox read back one by one, byte for byte', (t) => {
  fc.assert(
    fc.property(fc.array(messageArb, { minLength: 1, maxLength: 6 }), (msgs) => {
      const file = join(dir, `p${n++}.mbox`);
      writeFileSync(file, Buffer.concat(mboxOf(msgs, 1 << 20)));
      const back = [...messagesInFile(file)].map((m) => m.bytes);
      t.deepEqual(back.map((b) => b.toString('latin1')), msgs.map((m) => m.toString('latin1')));
    }),
    { numRuns: 200 },
  );
});

test('a file that is not an mbox is one message; a Maildir is its cur/ and new/', (t) => {
  const one = join(dir, 'one.eml');
  writeFileSync(one, 'From: a@example.net\n\nFrom the start.\n');
  t.deepEqual([...messagesInFile(one)].map((m) => m.bytes.toString()), ['From: a@example.net\n\nFrom the start.\n']);
  t.deepEqual(filesIn(one).map((f) => f.file), [one]);
});

test('reading an mbox is linear: a huge message and many small ones take time in proportion to their size', (t) => {
  const big = join(dir, 'big.mbox');
  // 8 MB of one message with a line every 40 bytes, some of them near-separators.
  const body = 'x'.repeat(30).concat('\nFrom x\n>From y\n').repeat(8 * 1024 * 1024 / 46);
  writeFileSync(big, Buffer.concat(mboxOf([Buffer.from(`Subject: big\n\n${body}`, 'latin1')], 16 << 20)));
  const small = join(dir, 'small.mbox');
  writeFileSync(small, Buffer.concat(mboxOf(Array.from({ length: 20_000 }, (_, i) => Buffer.from(`Subject: ${i}\n\n${'y'.repeat(380)}\n`)), 1 << 20)));
  const time = (f: string) => {
    const t0 = process.hrtime.bigint();
    let k = 0;
    for (const _m of messagesInFile(f)) k++;
    return { ms: Number(process.hrtime.bigint() - t0) / 1e6, k };
  };
  const a = time(big);
  const b = time(small);
  t.is(a.k, 1);
  t.is(b.k, 20_000);
  // Both about 8 MB: neither may take more than a few seconds even on a loaded machine.
  t.true(a.ms < 8000, `big: ${a.ms} ms`);
  t.true(b.ms < 8000, `small: ${b.ms} ms`);
});
