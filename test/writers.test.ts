// The writer threads of `vouch serve` (agent/serve/writers.ts): each direct delivery's claim and
// Maildir write run in a thread with the blocking code `vouch deliver` runs, and keep its promises:
// whole or absent, once per message, a failure reported with its errno code.

import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writers } from '../agent/serve/writers.js';
import { deliveryKey, dayOf, JOURNAL_DIR, type OnceJob } from '../agent/store/journal.js';
import { uniqueName } from '../agent/maildir/maildir.js';

const NOW = Date.UTC(2026, 10, 30, 12);

function place(): { home: string; maildir: string } {
  const root = mkdtempSync(join(tmpdir(), 'vouch-writers-'));
  const home = join(root, '.vouch');
  mkdirSync(home);
  return { home, maildir: join(root, 'Maildir') };
}

function job(p: { home: string; maildir: string }, text: string, over: Partial<OnceJob> = {}): OnceJob {
  const message = Buffer.from(text);
  return { home: p.home, maildir: p.maildir, dir: p.maildir, key: deliveryKey('bob@example.com', 'alice@example.org', message), name: uniqueName(NOW), now: NOW, note: '', head: 'Return-Path: <bob@example.com>\nDelivered-To: alice@example.org\n', message, ...over };
}

const inNew = (maildir: string) => readdirSync(join(maildir, 'new')).sort();
/** The claims of the day; none of the files written aside may be left. */
const claims = (home: string) => {
  const files = readdirSync(join(home, JOURNAL_DIR, dayOf(NOW)));
  if (files.some((f) => f.startsWith('tmp.'))) throw new Error(`files written aside were left: ${files.join(' ')}`);
  return files;
};

test('a delivery lands whole; a retry finds its claim and writes nothing more; another message under the same key gets a name of its own', async (t) => {
  const p = place();
  const w = new Writers(4);
  t.teardown(() => w.close());
  const first = job(p, 'Subject: one\n\nbody\0with NUL\rand bare CR\n', { note: 'ip 192.0.2.7\n' });
  await w.run(first);
  t.deepEqual(inNew(p.maildir), [first.name]);
  t.is(readFileSync(join(p.maildir, 'new', first.name), 'latin1'), `${first.head}Subject: one\n\nbody\0with NUL\rand bare CR\n`);
  t.is(readFileSync(join(p.home, JOURNAL_DIR, dayOf(NOW), first.key), 'latin1'), `${first.name}\nip 192.0.2.7\n`);
  // The MTA's retry (a new attempt picks a new name; the claim gives it the first one back).
  await w.run({ ...first, name: uniqueName(NOW) });
  t.deepEqual(inNew(p.maildir), [first.name]);
  // A different message whose key collides: the claimed name holds other bytes, so the next key.
  const other = job(p, 'Subject: two\n\n', { key: first.key });
  await w.run(other);
  const files = inNew(p.maildir);
  t.is(files.length, 2);
  t.true(files.includes(other.name));
  t.deepEqual(claims(p.home).sort(), [first.key, `${first.key}.1`].sort());
  t.deepEqual(readdirSync(join(p.maildir, 'tmp')), []);
});

test('a failure comes back with its errno code and leaves nothing in new/; the thread takes the next delivery', async (t) => {
  const p = place();
  for (const sub of ['new', 'cur']) mkdirSync(join(p.maildir, sub), { recursive: true });
  writeFileSync(join(p.maildir, 'tmp'), 'not a folder');
  const w = new Writers(1);
  t.teardown(() => w.close());
  const err = await t.throwsAsync(w.run(job(p, 'Subject: x\n\n')));
  t.is((err as NodeJS.ErrnoException).code, 'ENOTDIR');
  t.deepEqual(inNew(p.maildir), []);
  const q = place();
  const ok = job(q, 'Subject: y\n\n');
  await w.run(ok);
  t.deepEqual(inNew(q.maildir), [ok.name]);
});

test('200 deliveries at once through 8 threads all land whole, each under its own name and claim', async (t) => {
  const p = place();
  const w = new Writers(8);
  t.teardown(() => w.close());
  const jobs = Array.from({ length: 200 }, (_, i) => job(p, `Subject: ${i}\n\n${'a'.repeat(4096 + i)}\n`));
  await Promise.all(jobs.map((j) => w.run(j)));
  t.true(w.size <= 8);
  t.deepEqual(inNew(p.maildir), jobs.map((j) => j.name).sort());
  for (const j of jobs) t.is(readFileSync(join(p.maildir, 'new', j.name)).length, Buffer.byteLength(j.head) + j.message.length);
  t.is(claims(p.home).length, 200);
  t.deepEqual(readdirSync(join(p.maildir, 'tmp')), []);
});

test('twenty copies of one message at once, in different threads: one claim wins and one file is written', async (t) => {
  const p = place();
  const w = new Writers(8);
  t.teardown(() => w.close());
  const one = job(p, 'Subject: the same\n\nbody\n');
  await Promise.all(Array.from({ length: 20 }, () => w.run({ ...one, name: uniqueName(NOW) })));
  const files = inNew(p.maildir);
  t.is(files.length, 1);
  t.is(readFileSync(join(p.home, JOURNAL_DIR, dayOf(NOW), one.key), 'latin1'), `${files[0]}\n`);
  t.deepEqual(claims(p.home), [one.key]);
});

test('closed writers refuse new work and their threads end', async (t) => {
  const p = place();
  const w = new Writers(2);
  await w.run(job(p, 'Subject: before\n\n'));
  t.is(w.size, 1);
  await w.close();
  t.is(w.size, 0);
  await t.throwsAsync(w.run(job(p, 'Subject: after\n\n')), { message: /closed/ });
});
