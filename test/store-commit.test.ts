// Store.hold's whileCommitting: the held path composes a challenge while the hold's commit (and its
// fsync) is under way, and sends it only once hold() has returned.

import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claimNote, Store, type HoldResult } from '../agent/store/store.js';
import { holdInput } from './helpers.js';

const dbPath = () => join(mkdtempSync(join(tmpdir(), 'vouch-commit-')), 'vouch.db');
const claim = (now: number) => ({ note: claimNote({ at: now, pid: process.pid, host: 'h' }), view: { now, leaseMs: 60_000, host: 'h', alive: () => true } });

test('whileCommitting gets the result before hold() returns it, once, with the row as stored', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  const seen: string[] = [];
  const got: HoldResult[] = [];
  const held = store.hold(holdInput({ challenge: 'pending' }), undefined, claim(1), (r) => {
    seen.push('committing');
    got.push(r);
  });
  const result = await held;
  seen.push('returned');
  t.deepEqual(seen, ['committing', 'returned']);
  t.is(got.length, 1);
  t.is(got[0], result);
  t.true(result.owned);
  t.deepEqual(result.held, await store.get(result.id));
  await store.close();
});

test('a retry of a held message is told too: nothing claimed, so nothing to compose', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  await store.hold(holdInput({ challenge: 'pending' }), undefined, claim(1));
  let told: HoldResult | undefined;
  const again = await store.hold(holdInput({ challenge: 'pending' }), undefined, claim(2), (r) => (told = r));
  t.is(told, again);
  t.false(again.fresh);
  t.false(again.owned);
  t.is(again.held, undefined);
  await store.close();
});

test('an error thrown while committing is the caller\'s own: the message is held all the same', async (t) => {
  const store = await Store.open(dbPath(), { create: true });
  const r = await store.hold(holdInput(), undefined, undefined, () => {
    throw new Error('composer broke');
  });
  t.truthy(await store.get(r.id));
  // The connection is not left inside a transaction: the next one begins and commits.
  t.true((await store.hold(holdInput({ digest: 'd2' }))).fresh);
  await store.close();
});
