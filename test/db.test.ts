// The store's SQLite face (agent/store/db.ts) keeps each connection's statements prepared: the
// answers are those of a statement made for each call, whatever came before with the same SQL, a
// statement that cannot be prepared fails its call (and the next) instead of hanging, and a closed
// connection refuses calls and closes cleanly.

import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Db } from '../agent/store/db.js';

async function fresh(): Promise<Db> {
  const db = await Db.open(join(mkdtempSync(join(tmpdir(), 'vouch-db-')), 'x.db'), { create: true });
  await db.exec('CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)');
  return db;
}

test('kept statements answer as fresh ones: get after all or run of the same SQL, get with and without parameters, run counts', async (t) => {
  const db = await fresh();
  t.teardown(() => db.close());
  t.deepEqual(await db.run('INSERT INTO t (k, v) VALUES (?, ?)', ['a', 1]), { changes: 1, lastID: 1 });
  t.deepEqual(await db.run('INSERT INTO t (k, v) VALUES (?, ?)', ['b', 2]), { changes: 1, lastID: 2 });
  t.deepEqual(await db.all('SELECT k FROM t ORDER BY k'), [{ k: 'a' }, { k: 'b' }]);
  t.deepEqual(await db.get('SELECT k FROM t ORDER BY k'), { k: 'a' }, 'get after all of the same SQL starts from the first row');
  t.deepEqual(await db.get('SELECT k FROM t ORDER BY k'), { k: 'a' }, 'and again: a get does not step on from the last one');
  t.deepEqual(await db.get('SELECT v FROM t WHERE k = ?', ['b']), { v: 2 });
  t.is(await db.get('SELECT v FROM t WHERE k = ?', ['zz']), undefined);
  t.deepEqual(await db.get('SELECT v FROM t WHERE k = ?', ['a']), { v: 1 });
  t.deepEqual(await db.run('UPDATE t SET v = v + 1'), { changes: 2, lastID: 2 });
  t.deepEqual(await db.run('UPDATE t SET v = v + 1'), { changes: 2, lastID: 2 });
  t.deepEqual(await db.all('SELECT v FROM t ORDER BY k'), [{ v: 3 }, { v: 4 }]);
  // A change that returns rows goes through a statement of its own, stepped once and finalized.
  await db.run('INSERT INTO t (k, v) VALUES (?, ?) RETURNING k', ['c', 5]);
  t.deepEqual(await db.get('SELECT count(*) AS n FROM t'), { n: 3 });
  // Concurrent calls on one kept statement each get their own answer.
  const many = await Promise.all(['a', 'b', 'c', 'a', 'zz'].map((k) => db.get<{ v: number }>('SELECT v FROM t WHERE k = ?', [k])));
  t.deepEqual(many.map((r) => r?.v), [3, 4, 5, 3, undefined]);
});

test('a statement that cannot be prepared fails its call and the next one, and the connection still closes', async (t) => {
  const db = await fresh();
  await t.throwsAsync(db.run('INSERT INTO nowhere (k) VALUES (?)', ['a']), { message: /no such table/ });
  await t.throwsAsync(db.get('SELECT missing_column FROM t WHERE k = ?', ['a']), { message: /no such column/ });
  await t.throwsAsync(db.run('INSERT INTO nowhere (k) VALUES (?)', ['a']), { message: /no such table/ });
  // The same SQL works once what it needs exists: a failed statement is not kept.
  await db.exec('CREATE TABLE nowhere (k TEXT)');
  t.is((await db.run('INSERT INTO nowhere (k) VALUES (?)', ['a'])).changes, 1);
  // A statement that fails as it runs (a constraint) fails its call; the next call of the same SQL runs.
  await db.run('INSERT INTO t (k) VALUES (?)', ['dup']);
  await t.throwsAsync(db.run('INSERT INTO t (k) VALUES (?)', ['dup']), { message: /UNIQUE/ });
  t.is((await db.run('INSERT INTO t (k) VALUES (?)', ['dup2'])).changes, 1);
  await t.notThrowsAsync(db.close());
});

test('a closed connection refuses calls, and calls made while it closes do not keep it open', async (t) => {
  const db = await fresh();
  await db.get('SELECT count(*) AS n FROM t');
  const closing = db.close();
  await t.throwsAsync(db.get('SELECT k FROM t WHERE k = ?', ['a']), { message: /closed/ });
  await t.notThrowsAsync(closing);
  await t.throwsAsync(db.all('SELECT k FROM t'), { message: /closed/ });
});

test('more statements than are kept: the oldest are finalized and every answer stays right', async (t) => {
  const db = await fresh();
  t.teardown(() => db.close());
  for (let i = 0; i < 100; i++) await db.run('INSERT INTO t (k, v) VALUES (?, ?)', [`k${i}`, i]);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < 100; i++) t.deepEqual(await db.get(`SELECT v FROM t WHERE k = ? AND ${i} = ${i}`, [`k${i}`]), { v: i });
  }
});
