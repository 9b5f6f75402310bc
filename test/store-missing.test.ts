// Only `vouch init` creates the store: a missing or empty vouch.db is a temporary failure for
// `deliver` and a clear error for every other command, never a reason to start an empty one.
import test from 'ava';
import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store, StoreMissingError } from '../agent/store/store.js';
import { deliverQmail, makeHome, message, postfixEnv, vouch, type TestHome } from './helpers.js';

function removeStore(h: TestHome): string {
  const db = join(h.dir, 'vouch.db');
  for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
  return db;
}

test('deliver with the store deleted is a temporary failure (qmail 111) and does not make a new one', async (t) => {
  const h = await makeHome();
  const db = removeStore(h);
  const r = await deliverQmail(h, 'bob@example.com', message());
  t.is(r.code, 111);
  t.is(r.stdout, 'vouch: the pending store is missing; run vouch init (#4.3.0)\n');
  t.false(existsSync(db));
});

test('deliver under Postfix with the store deleted exits 75', async (t) => {
  const h = await makeHome();
  const db = removeStore(h);
  const r = await vouch(['deliver'], { env: postfixEnv(h, 'bob@example.com'), input: message() });
  t.is(r.code, 75);
  t.regex(r.stdout, /^vouch: the pending store is missing; run vouch init \(#4\.3\.0\)\n$/);
  t.false(existsSync(db));
});

test('deliver with an empty (0-byte) store is a temporary failure and leaves the file as it is', async (t) => {
  const h = await makeHome();
  const db = removeStore(h);
  writeFileSync(db, '');
  const r = await deliverQmail(h, 'bob@example.com', message());
  t.is(r.code, 111);
  t.is(r.stdout, 'vouch: the pending store is empty; run vouch init (#4.3.0)\n');
  t.is(statSync(db).size, 0);
});

for (const args of [['pending', 'list'], ['whitelist', 'list'], ['whitelist', 'add', 'bob@example.com'], ['expire'], ['fsck'], ['address', 'dated'], ['web', '--listen', '127.0.0.1:0']]) {
  test(`vouch ${args.join(' ')} refuses a missing store with one line, and makes none`, async (t) => {
    const h = await makeHome();
    const db = removeStore(h);
    const r = await vouch(args, { env: h.env });
    t.is(r.code, 1);
    t.regex(r.stderr, /^vouch: the pending store is missing; run vouch init[^\n]*\n$/);
    t.false(existsSync(db));
  });
}

test('vouch init makes the store again, and then everything works', async (t) => {
  const h = await makeHome();
  removeStore(h);
  t.is((await vouch(['init'], { env: h.env })).code, 0);
  t.is((await vouch(['pending', 'list'], { env: h.env })).code, 0);
  t.is((await deliverQmail(h, 'bob@example.com', message())).code, 99);
});

test('Store.open creates a store only when asked to', async (t) => {
  const h = await makeHome();
  const db = removeStore(h);
  await t.throwsAsync(Store.open(db), { instanceOf: StoreMissingError });
  t.false(existsSync(db));
  writeFileSync(db, '');
  await t.throwsAsync(Store.open(db), { instanceOf: StoreMissingError, message: /empty/ });
  const made = await Store.open(db, { create: true });
  await made.close();
  const again = await Store.open(db);
  await again.close();
  t.pass();
});
