// The lists map (lists.map): answers as the store's lookup does, refuses to answer when it is
// missing, marked stale or damaged, and is rewritten by every change to the lists.
import test from 'ava';
import fc from 'fast-check';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lookupKeys, parsePattern } from '../agent/mail/address.js';
import { buildListMap, markStale, MAP_FILE, readListMap, STALE_DIR, staleMarks, writeListMap, type ListRow } from '../agent/store/listmap.js';
import { Store } from '../agent/store/store.js';

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'vouch-map-'));
}

/** What the store's lookup answers for these rows: blacklist first, else any whitelist match. */
function reference(rows: readonly ListRow[], keys: readonly string[]): { list: string; pattern: string } | undefined {
  const hits = rows.filter((r) => keys.includes(r.key));
  const black = hits.find((r) => r.list === 'black');
  const hit = black ?? hits[0];
  return hit === undefined ? undefined : { list: hit.list, pattern: hit.pattern };
}

const rowsOf = (list: 'white' | 'black', patterns: readonly string[]): ListRow[] =>
  patterns.map((p) => {
    const parsed = parsePattern(p);
    return { key: parsed.key, list, pattern: parsed.text };
  });

test('the map answers like the store: exact address, domain, subdomain and VERP prefix, blacklist first', (t) => {
  const home = dir();
  writeListMap(home, [
    ...rowsOf('white', ['bob@example.com', '@friends.test', '*@*.corp.test', 'list-@lists.test']),
    ...rowsOf('black', ['@spam.test', 'eve@friends.test']),
  ]);
  const ask = (sender: string) => {
    const a = readListMap(home, lookupKeys(sender));
    return a.usable ? a.hit?.list : 'unusable';
  };
  t.is(ask('Bob@Example.COM'), 'white');
  t.is(ask('carol@friends.test'), 'white');
  t.is(ask('x@mail.corp.test'), 'white');
  t.is(ask('list-bounces-123@lists.test'), 'white');
  t.is(ask('eve@friends.test'), 'black');
  t.is(ask('anyone@spam.test'), 'black');
  t.is(ask('stranger@example.net'), undefined);
  t.is(ask(''), undefined);
});

test('small and large maps give the store’s answer for random lists (property)', (t) => {
  const label = fc.stringMatching(/^[a-z0-9]{1,6}$/);
  const addr = fc.tuple(label, label, fc.constantFrom('test', 'example', 'org')).map(([l, d, tld]) => `${l}@${d}.${tld}`);
  const pattern = fc.oneof(addr, fc.tuple(label, fc.constantFrom('test', 'org')).map(([d, tld]) => `@${d}.${tld}`));
  fc.assert(
    fc.property(fc.array(pattern, { maxLength: 60 }), fc.array(pattern, { maxLength: 20 }), fc.array(addr, { minLength: 1, maxLength: 10 }), (white, black, senders) => {
      const seen = new Set<string>();
      const rows = [...rowsOf('black', black), ...rowsOf('white', white)].filter((r) => !seen.has(r.key) && seen.add(r.key));
      const home = dir();
      try {
        writeListMap(home, rows);
        for (const s of senders) {
          const a = readListMap(home, lookupKeys(s));
          if (!a.usable) return false;
          const want = reference(rows, lookupKeys(s));
          if ((a.hit?.list ?? null) !== (want?.list ?? null)) return false;
        }
        return true;
      } finally {
        rmSync(home, { recursive: true, force: true });
      }
    }),
    { numRuns: 150 },
  );
  // Large enough to be read bucket by bucket rather than whole.
  const many: ListRow[] = [];
  for (let i = 0; i < 5000; i++) many.push({ key: `a:user${i}@bulk.test`, list: i % 7 === 0 ? 'black' : 'white', pattern: `user${i}@bulk.test` });
  const home = dir();
  writeListMap(home, many);
  t.true(readFileSync(join(home, MAP_FILE)).length > 64 * 1024);
  for (const i of [0, 1, 6, 7, 4999]) {
    const a = readListMap(home, lookupKeys(`user${i}@bulk.test`));
    t.deepEqual(a, { usable: true, hit: { list: i % 7 === 0 ? 'black' : 'white', pattern: `user${i}@bulk.test` } });
  }
  t.deepEqual(readListMap(home, lookupKeys('user5000@bulk.test')), { usable: true, hit: undefined });
});

test('a missing, stale or damaged map is not used, and reading it never throws', (t) => {
  const home = dir();
  t.deepEqual(readListMap(home, lookupKeys('bob@example.com')), { usable: false, why: 'missing' });
  writeListMap(home, rowsOf('white', ['bob@example.com']));
  t.true(readListMap(home, lookupKeys('bob@example.com')).usable);
  const mark = markStale(home);
  t.deepEqual(readListMap(home, lookupKeys('bob@example.com')), { usable: false, why: 'stale' });
  rmSync(join(home, STALE_DIR, mark));
  const good = buildListMap(rowsOf('white', ['bob@example.com', '@example.org']));
  for (const bad of [good.subarray(0, 40), Buffer.from('not a map at all, not a map at all'), Buffer.concat([good, Buffer.from('x')]), Buffer.alloc(0)]) {
    writeFileSync(join(home, MAP_FILE), bad);
    t.deepEqual(readListMap(home, lookupKeys('bob@example.com')), { usable: false, why: 'damaged' });
  }
  // A bucket table pointing past the end.
  const broken = Buffer.from(good);
  broken.writeUInt32LE(0xfffffff0, 32);
  writeFileSync(join(home, MAP_FILE), broken);
  t.false(readListMap(home, lookupKeys('bob@example.com')).usable);
  writeFileSync(join(home, MAP_FILE), good);
  truncateSync(join(home, MAP_FILE), 31);
  t.false(readListMap(home, lookupKeys('bob@example.com')).usable);
});

test('every change to the lists rewrites the map before it commits and leaves no stale mark', async (t) => {
  const home = dir();
  const store = await Store.open(join(home, 'vouch.db'), { create: true });
  t.teardown(() => store.close());
  await store.addPatterns('white', [parsePattern('bob@example.com')]);
  t.deepEqual(readListMap(home, lookupKeys('bob@example.com')), { usable: true, hit: { list: 'white', pattern: 'bob@example.com' } });
  await store.addPatterns('black', [parsePattern('bob@example.com')]);
  t.deepEqual(readListMap(home, lookupKeys('bob@example.com')), { usable: true, hit: { list: 'black', pattern: 'bob@example.com' } });
  await store.removePatterns('black', [parsePattern('bob@example.com')]);
  t.deepEqual(readListMap(home, lookupKeys('bob@example.com')), { usable: true, hit: undefined });
  t.deepEqual(staleMarks(home), []);
});

test('a change that fails leaves the map marked stale, and a repair rewrites it from the store', async (t) => {
  const home = dir();
  const store = await Store.open(join(home, 'vouch.db'), { create: true });
  t.teardown(() => store.close());
  await store.addPatterns('white', [parsePattern('bob@example.com')]);
  // A pattern key too long for the map: the rewrite throws inside the transaction, which rolls back.
  const long = `${'x'.repeat(70_000)}@example.com`;
  await t.throwsAsync(store.addPatterns('white', [{ ...parsePattern('carol@example.com'), key: `a:${long}`, text: long }]));
  t.is(await store.countPatterns('white'), 1);
  t.deepEqual(readListMap(home, lookupKeys('bob@example.com')), { usable: false, why: 'stale' });
  // The mark is this process's own: a writer at work, so a repair leaves it alone.
  t.false(await store.repairListMap());
  // Marks of processes that are gone are cleared by the repair.
  for (const m of staleMarks(home)) rmSync(join(home, STALE_DIR, m));
  mkdirSync(join(home, STALE_DIR), { recursive: true });
  writeFileSync(join(home, STALE_DIR, '999999999.1.1'), '');
  t.true(await store.repairListMap());
  t.deepEqual(staleMarks(home), []);
  t.deepEqual(readListMap(home, lookupKeys('bob@example.com')), { usable: true, hit: { list: 'white', pattern: 'bob@example.com' } });
});
