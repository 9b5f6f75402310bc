// Concurrency: parallel deliveries, CLI releases and deletes over overlapping ids, `vouch expire`
// and `vouch fsck`, all at once on one home. The store stays intact, every message is accounted for,
// and a busy store only ever shows as a temporary failure the MTA retries.

import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliverFromEnvironment } from '../agent/deliver/deliver.js';
import { deliver, uniqueName } from '../agent/maildir/maildir.js';
import { makeHome, qmailEnv, vouch } from './helpers.js';
import { inMaildir, inventory, traced } from './stress/ledger.js';
import { MtaStats, qmailDone, qmailTemporary, untilDone } from './stress/mta.js';
import { messageFile, runCli, type Run } from './stress/run.js';
import { random, SEED, size } from './stress/size.js';

const ROUNDS = size(1, 10);
const PARALLEL = 50;
const DAY = 86_400_000;

test('50 parallel deliveries, releases, deletes, expire and fsck on one home lose nothing and never leak SQLITE_BUSY', async (t) => {
  t.timeout(size(3, 30) * 60_000);
  const rand = random(SEED);
  t.log(`seed ${SEED}`);
  const home = await makeHome({ config: { challenge: { enabled: false } } });
  t.is((await vouch(['whitelist', 'add', '@friends.test'], { env: home.env })).code, 0);
  const work = mkdtempSync(join(tmpdir(), 'vouch-conc-'));
  const stats = new MtaStats();
  const others: { what: string; run: Run }[] = [];
  const pre = new Map<string, { sid: string; sender: string; msg: string; old: boolean; released: boolean; deleted: boolean }>();
  const fresh = new Map<string, { sender: string; msg: string; whitelisted: boolean }>();
  let sidNo = 0;

  for (let round = 0; round < ROUNDS; round++) {
    // Held beforehand, in-process; half of them old enough for `vouch expire`.
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const sid = `p${++sidNo}`;
      const sender = `${sid}@strangers.test`;
      const msg = traced(sid, sender, 2000);
      const old = i % 2 === 0;
      const now = old ? Date.now() - 30 * DAY : Date.now();
      const r = await deliverFromEnvironment(Buffer.from(msg), { home: home.dir, mta: 'qmail', env: qmailEnv(home, sender), now: () => now });
      const id = /held ([a-z2-7]{13})/.exec(r.line)?.[1] ?? '';
      ids.push(id);
      pre.set(id, { sid, sender, msg, old, released: false, deleted: false });
    }
    const pick = (n: number) => Array.from({ length: n }, () => ids[Math.floor(rand() * ids.length)] as string).filter((v, i, a) => a.indexOf(v) === i);

    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < PARALLEL; i++) {
      const whitelisted = i % 2 === 0;
      const sid = `f${++sidNo}`;
      const sender = whitelisted ? `${sid}@friends.test` : `${sid}@strangers.test`;
      const msg = traced(sid, sender, 500 + Math.floor(rand() * 30_000));
      fresh.set(sid, { sender, msg, whitelisted });
      const input = messageFile(work, sid, msg);
      const go = () => untilDone(['deliver'], { kind: 'none' }, stats, { env: qmailEnv(home, sender), input, done: qmailDone, temporary: qmailTemporary, rand, randomMs: 0 });
      jobs.push(go());
      // Now and then the same message twice at once, as an MTA retrying a delivery it thinks timed out.
      if (i % 10 === 0) jobs.push(go());
    }
    const cli = (what: string, args: string[]) =>
      jobs.push(runCli(args, { env: home.env }).then((run) => others.push({ what, run })));
    for (let i = 0; i < 8; i++) {
      const want = pick(4);
      for (const id of want) (pre.get(id) as { released: boolean }).released = true;
      cli('release', ['pending', 'release', ...want, ...(i % 2 ? ['--whitelist'] : [])]);
    }
    for (let i = 0; i < 5; i++) {
      const want = pick(3);
      for (const id of want) (pre.get(id) as { deleted: boolean }).deleted = true;
      cli('delete', ['pending', 'delete', ...want]);
    }
    cli('expire', ['expire']);
    cli('expire', ['expire']);
    cli('fsck', ['fsck']);
    await Promise.all(jobs);
  }

  const inv = await inventory(join(home.dir, 'vouch.db'), home.maildir);
  const problems: string[] = [...stats.bad];
  for (const { what, run } of others) {
    const out = `${run.stdout}${run.stderr}`;
    const raced = (what === 'release' || what === 'delete') && run.code === 1 && /not held/.test(run.stdout) && run.stderr === '';
    if (!(run.code === 0 || raced)) problems.push(`${what}: exit ${run.code} ${out.trim().slice(0, 200)}`);
    if (/SQLITE|database is locked/i.test(out)) problems.push(`${what}: ${out.trim().slice(0, 200)}`);
  }
  const states = new Map<string, number>();
  for (const [id, p] of pre) {
    const rows = inv.rows.get(p.sid) ?? [];
    const state = rows.length === 1 ? (rows[0]?.state ?? '?') : `${rows.length} rows`;
    states.set(state, (states.get(state) ?? 0) + 1);
    const files = inv.files.get(p.sid) ?? [];
    const ok =
      (state === 'released' && p.released && files.length === 1 && files[0]?.equals(inMaildir(p.sender, p.msg)) === true) ||
      (state === 'deleted' && p.deleted && files.length === 0) ||
      (state === 'expired' && p.old && files.length === 0) ||
      (state === 'held' && !p.old && !p.released && !p.deleted && files.length === 0 && rows[0]?.body?.equals(Buffer.from(p.msg)) === true);
    // Asked for by one side only, and not old: that side must have won.
    const must = !p.old && p.released !== p.deleted ? (p.released ? 'released' : 'deleted') : undefined;
    if (!ok || (must !== undefined && state !== must)) problems.push(`${id} (${p.sid}): ${state}, ${files.length} file(s), old=${p.old} release=${p.released} delete=${p.deleted}`);
  }
  for (const [sid, f] of fresh) {
    const files = inv.files.get(sid) ?? [];
    const live = (inv.rows.get(sid) ?? []).filter((r) => r.state === 'held');
    if (f.whitelisted ? files.length !== 1 || !files[0]?.equals(inMaildir(f.sender, f.msg)) || live.length > 0 : live.length !== 1 || files.length > 0 || !live[0]?.body?.equals(Buffer.from(f.msg))) {
      problems.push(`${sid}: ${files.length} file(s), ${live.length} held, whitelisted=${f.whitelisted}`);
    }
  }
  t.log(`${ROUNDS} round(s): ${fresh.size} fresh messages in ${stats.firstRuns} deliveries (${stats.tempfails} temporary failures, retried), ${pre.size} held beforehand ending ${[...states].map(([k, v]) => `${v} ${k}`).join(', ')}; ${others.length} CLI runs`);
  t.deepEqual(problems, []);
  t.deepEqual(inv.integrity, ['ok']);
  t.deepEqual(inv.untraced, []);
  t.deepEqual(inv.tmp, []);
});

test('two writers of one Maildir name at once (a release and fsck finishing it) both succeed and leave one whole file', async (t) => {
  // Each writer used to share tmp/NAME: the second truncated the file the first had linked into new/,
  // then failed its own link with ENOENT once the first removed tmp/NAME.
  const payload = Buffer.alloc(4 << 20, 0x61);
  for (let i = 0; i < size(10, 100); i++) {
    const dir = mkdtempSync(join(tmpdir(), 'vouch-two-'));
    const name = uniqueName();
    await Promise.all([deliver(dir, name, [payload]), deliver(dir, name, [payload]), deliver(dir, name, [payload])]);
    t.deepEqual(readdirSync(join(dir, 'new')), [name]);
    t.true(readFileSync(join(dir, 'new', name)).equals(payload));
    t.deepEqual(readdirSync(join(dir, 'tmp')), []);
  }
});
