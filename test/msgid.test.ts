// The Message-ID reader: what it takes from In-Reply-To/References, its bound on the number of ids,
// and that hostile header values cost it linear time.
import test from 'ava';
import fc from 'fast-check';
import { MAX_REFERENCES, messageIds, replyIds } from '../agent/mail/msgid.js';

const table: [string, string, string[]][] = [
  ['one id', '<a.b@example.org>', ['a.b@example.org']],
  ['ids with folding white space and comments between', ' <a@x>\t(comment <not@this)\r\n <b@y> ', ['a@x', 'b@y']],
  ['a phrase before the id (old In-Reply-To style)', 'Your message of Monday <m1@x.org>', ['m1@x.org']],
  ['no @: not an id', '<nothing-here>', []],
  ['an empty or lopsided id', '<> <@x> <y@> <a@b>', ['a@b']],
  ['a space inside breaks the id', '<a b@x> <c@d>', ['c@d']],
  ['a stray < starts over', '<<a@x>', ['a@x']],
  ['unclosed at the end', '<a@x> <b@', ['a@x']],
  ['non-ASCII is not an id', '<ä@x> <b@y>', ['b@y']],
];
for (const [what, value, ids] of table) {
  test(`message ids: ${what}`, (t) => {
    t.deepEqual(messageIds(value), ids);
  });
}

test('message ids: an id longer than 250 characters is skipped', (t) => {
  t.deepEqual(messageIds(`<${'a'.repeat(300)}@x> <ok@y>`), ['ok@y']);
});

test('reply ids: In-Reply-To first, then the first and the latest of References, at most MAX_REFERENCES', (t) => {
  const refs = Array.from({ length: 100 }, (_, i) => `<r${i}@x>`).join(' ');
  const ids = replyIds(['<p@x>'], [refs]);
  t.true(ids.length <= MAX_REFERENCES);
  t.is(ids[0], 'p@x');
  t.is(ids[1], 'r0@x');
  t.true(ids.includes('r99@x'));
  t.false(ids.includes('r50@x'));
});

test('message ids: linear on hostile values (a million characters in well under a second)', (t) => {
  const shapes = ['<'.repeat(1_000_000), '<a'.repeat(500_000), `<${'@'.repeat(999_998)}>`, '<a@b>'.repeat(200_000), `${'<x@y '.repeat(200_000)}`];
  for (const v of shapes) {
    const start = process.hrtime.bigint();
    const ids = replyIds([v], [v]);
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    t.true(ids.length <= MAX_REFERENCES);
    t.true(ms < 1000, `${v.slice(0, 10)}…: ${ms} ms`);
  }
});

test('message ids: any string gives at most `keep` ids, each one a bracket-free printable id with an @', (t) => {
  t.notThrows(() => fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('<', '>', '@', 'a', ' ', '.', '\t', 'é'), maxLength: 400 }), fc.integer({ min: 1, max: 40 }), fc.boolean(), (v, keep, last) => {
      const ids = messageIds(v, keep, last);
      return ids.length <= keep && ids.every((id) => /^[\x21-\x3b\x3d\x3f-\x7e]+$/.test(id) && id.includes('@') && v.includes(`<${id}>`));
    }),
  ));
});
