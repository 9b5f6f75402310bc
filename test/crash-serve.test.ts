// Kill -9 harness for `vouch serve`: several LMTP clients that retry every recipient not answered
// 250 (as Postfix does) while the server is SIGKILLed at random moments and at the named failpoints
// and started again. Afterwards every message is, for each of its recipients, in the Maildir once
// and whole, or held once and whole. Small under `npm test`, 2,000 messages under
// `npm run test:stress`.

import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initHome, homePaths } from '../agent/home/home.js';
import { parsePattern } from '../agent/mail/address.js';
import { Store } from '../agent/store/store.js';
import { CLI, setConfig } from './helpers.js';
import { lmtpSession } from './lmtp.js';
import { audit, clean, inMaildir, inventory, traced, type Expect } from './stress/ledger.js';
import { pool, random, SEED, size } from './stress/size.js';

const MESSAGES = size(60, 2000);
const CLIENTS = size(3, 8);
/** Random kills (each after the server is up); the full run kills all the way through. */
const KILLS = size(6, Number.POSITIVE_INFINITY);
const USERS = ['alice', 'bob', 'carol'];
/** Where a server started with VOUCH_FAILPOINT dies by itself on its first delivery through it. */
const POINTS = ['journal:after-claim', 'maildir:after-tmp-write', 'maildir:after-fsync', 'maildir:after-link', 'store:after-commit'];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('SIGKILL of vouch serve at any moment loses nothing: every recipient ends delivered or held exactly once, whole', async (t) => {
  t.timeout(size(2, 60) * 60_000);
  const started = Date.now();
  const rand = random(SEED);
  t.log(`seed ${SEED} (VOUCH_SEED=${SEED} replays it)`);
  const base = mkdtempSync(join(tmpdir(), 'vouch-serve-crash-'));
  const homes = new Map<string, { dir: string; maildir: string; expected: Map<string, Expect> }>();
  for (const u of USERS) {
    const folder = join(base, 'example.org', u);
    mkdirSync(folder, { recursive: true });
    const dir = join(folder, '.vouch');
    initHome(homePaths(dir), `${u}@example.org`, { HOME: folder, USER: u });
    setConfig(dir, { identity: { delimiter: '+' }, challenge: { enabled: false, require: 'none' } });
    const store = await Store.open(join(dir, 'vouch.db'), { create: true });
    await store.addPatterns('white', [parsePattern('@friends.test')]);
    await store.close();
    homes.set(u, { dir, maildir: join(folder, 'Maildir'), expected: new Map() });
  }
  const sock = join(base, 'lmtp.sock');

  // The server, started again whenever it dies; every other start arms a failpoint.
  let server: ChildProcess | undefined;
  let ready: Promise<void> = Promise.resolve();
  let finished = false;
  let starts = 0;
  let randomKills = 0;
  const failpointDeaths = new Map<string, number>();
  const start = () => {
    starts += 1;
    // Each failpoint in turn first, then now and then one at random.
    const point = starts % 2 === 1 ? undefined : starts <= 2 * POINTS.length ? POINTS[starts / 2 - 1] : rand() < 0.3 ? POINTS[Math.floor(rand() * POINTS.length)] : undefined;
    const child = spawn(process.execPath, [CLI, 'serve', '--listen', `unix:${sock}`, '--homes', join(base, '%d', '%u', '.vouch')], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...(point ? { VOUCH_FAILPOINT: point } : {}) },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    server = child;
    ready = new Promise<void>((resolve) => {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('serving LMTP')) resolve();
      });
      child.once('exit', () => resolve());
    });
    child.once('exit', (_code, signal) => {
      if (point && signal === 'SIGKILL' && server === child && !killedByUs.has(child)) failpointDeaths.set(point, (failpointDeaths.get(point) ?? 0) + 1);
      if (!finished) start();
    });
  };
  const killedByUs = new WeakSet<ChildProcess>();
  start();
  const killer = (async () => {
    while (!finished && randomKills < KILLS) {
      await ready;
      await sleep(50 + rand() * 400);
      if (finished || !server || server.exitCode !== null || server.signalCode !== null) continue;
      killedByUs.add(server);
      randomKills += 1;
      server.kill('SIGKILL');
      await sleep(5);
    }
  })();

  // The mail: a friend's (delivered) or a stranger's (held), to one, two or three users.
  const jobs = Array.from({ length: MESSAGES }, (_, i) => {
    const sid = `m${i}`;
    const sender = i % 2 === 0 ? `f${i}@friends.test` : `s${i}@strangers.test`;
    const to = USERS.filter(() => rand() < 0.6);
    if (to.length === 0) to.push(USERS[i % USERS.length] as string);
    const msg = traced(sid, sender, 200 + Math.floor(rand() * 30_000));
    for (const u of to) {
      const h = homes.get(u);
      h?.expected.set(sid, i % 2 === 0 ? { where: 'maildir', bytes: inMaildir(sender, msg, `${u}@example.org`) } : { where: 'held', bytes: Buffer.from(msg) });
    }
    return { sid, sender, to: to.map((u) => `${u}@example.org`), msg };
  });

  const bad: string[] = [];
  let attempts = 0;
  let deferred = 0;
  await pool(jobs, CLIENTS, async (job) => {
    let pending = job.to;
    // As an MTA keeps a message for days, a client keeps trying for minutes (a server start takes
    // seconds on a loaded machine, and the killer may strike again at once).
    const giveUp = Date.now() + 10 * 60_000;
    while (pending.length > 0) {
      if (Date.now() > giveUp) {
        bad.push(`${job.sid}: never acknowledged`);
        return;
      }
      attempts += 1;
      let c;
      try {
        await ready;
        c = await lmtpSession({ path: sock });
      } catch {
        await sleep(20);
        continue;
      }
      try {
        const r = await c.send(job.sender, pending, job.msg);
        const accepted = pending.filter((_, i) => (r.rcpt[i]?.code ?? 500) < 300);
        const still = pending.filter((_, i) => (r.rcpt[i]?.code ?? 500) >= 300);
        accepted.forEach((rcpt, i) => {
          const code = r.per[i]?.code ?? 0;
          if (code === 250) return;
          if (code >= 400 && code < 500) {
            deferred += 1;
            still.push(rcpt);
          } else bad.push(`${job.sid} to ${rcpt}: ${code} ${r.per[i]?.text ?? ''}`);
        });
        for (const x of [r.mail, r.data, ...r.rcpt]) if (x.code >= 500) bad.push(`${job.sid}: ${x.code} ${x.text}`);
        pending = still;
      } catch {
        // The server died mid-conversation: whatever was not answered 250 is sent again.
      } finally {
        c.close();
      }
    }
  });
  finished = true;
  await killer;
  await ready;
  if (server && server.exitCode === null && server.signalCode === null) {
    const s = server;
    const gone = new Promise((r) => s.once('exit', r));
    s.kill('SIGTERM');
    await gone;
  }

  // What the clients saw first: a reply no MTA may get, or a message the clients gave up on.
  t.deepEqual(bad, []);
  let total = { checked: 0, lost: 0, duplicated: 0, truncated: 0, heldTwice: 0, misplaced: 0 };
  let leftInTmp = 0;
  for (const [u, h] of homes) {
    const inv = await inventory(join(h.dir, 'vouch.db'), h.maildir);
    const a = audit(inv, h.expected);
    t.true(clean(a), `${u}: ${JSON.stringify(a).slice(0, 1500)}`);
    t.deepEqual(inv.untraced, []);
    t.deepEqual(inv.integrity, ['ok']);
    // A kill after the link and before the tmp name's removal leaves a second name: fsck's work.
    const tmp = readdirSync(join(h.maildir, 'tmp'));
    leftInTmp += tmp.length;
    total = {
      checked: total.checked + a.checked,
      lost: total.lost + a.lost.length,
      duplicated: total.duplicated + a.duplicated.length,
      truncated: total.truncated + a.truncated.length,
      heldTwice: total.heldTwice + a.heldTwice.length,
      misplaced: total.misplaced + a.misplaced.length,
    };
    t.true(tmp.every((n) => statSync(join(h.maildir, 'tmp', n)).isFile()));
  }
  const fp = [...failpointDeaths].map(([k, v]) => `${k}=${v}`).join(' ');
  t.log(`${MESSAGES} messages, ${total.checked} recipients, ${CLIENTS} clients: ${attempts} transactions, ${deferred} answers 451, ${starts} server starts, ${randomKills} random kills, failpoint deaths: ${fp || 'none'}; ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.log(`audit: ${total.lost} lost, ${total.duplicated} duplicated, ${total.truncated} truncated, ${total.heldTwice} held twice, ${total.misplaced} misplaced; ${leftInTmp} file(s) left in tmp/ for fsck`);
  t.is(total.lost + total.duplicated + total.truncated + total.heldTwice + total.misplaced, 0);
  t.true(randomKills > 0);
});
