// Full disk: the vouch home and the Maildir on a tiny tmpfs, filled to the brim and to a few hundred
// KB short. Deliveries fail temporarily (111 under qmail, 75 under Postfix), nothing half-written
// reaches new/, the store stays intact, and every message goes through once space returns.
// Mounting needs root (as in CI); elsewhere the test says it was skipped and why.

import test from 'ava';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { postfixEnv, qmailEnv, setConfig, type TestHome } from './helpers.js';
import { audit, clean, inMaildir, inventory, traced, type Expect } from './stress/ledger.js';
import { MtaStats, qmailDone, qmailTemporary, untilDone } from './stress/mta.js';
import { messageFile, runCli, type Run } from './stress/run.js';
import { random, SEED, size } from './stress/size.js';

const ROUNDS = size(1, 5);
/** Room for every message of every round once the filler is gone; the filler takes the rest. */
const TMPFS = size(16, 64) << 20;

function mount(dir: string, bytes: number): string | undefined {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes},mode=0700`, 'tmpfs', dir], { encoding: 'utf8' });
  return r.status === 0 ? undefined : (r.stderr || r.error?.message || `mount exited ${r.status}`).trim();
}

function umount(dir: string): void {
  if (spawnSync('umount', [dir]).status !== 0) spawnSync('umount', ['-l', dir]);
}

/** Why a tmpfs cannot be mounted here, or undefined when it can. */
function cannotMount(): string | undefined {
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  const probe = mkdtempSync(join(tmpdir(), 'vouch-probe-'));
  const why = mount(probe, 1 << 20);
  if (why === undefined) umount(probe);
  rmSync(probe, { recursive: true, force: true });
  return why;
}

/** Fills the file system at `dir` to the last byte, then gives `free` bytes back. */
function fill(file: string, free: number): void {
  const fd = openSync(file, 'a');
  const chunk = Buffer.alloc(64 << 10, 0x78);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  }
  // The last partial chunk: byte by byte down to nothing.
  try {
    for (let n = chunk.length >> 1; n > 0; n >>= 1) {
      try {
        for (;;) writeSync(fd, chunk, 0, n);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
    }
  } finally {
    closeSync(fd);
  }
  if (free > 0) truncateSync(file, Math.max(0, statSync(file).size - free));
}

const why = cannotMount();

if (why !== undefined) {
  test(`full disk: skipped, because ${why}`, (t) => {
    t.log(`full-disk test skipped: ${why}; run the tests as root to mount a tmpfs`);
    t.pass();
  });
} else {
  test('on a full disk deliveries fail temporarily, nothing half-written lands in new/, and all go through once space returns', async (t) => {
    t.timeout(size(3, 20) * 60_000);
    const rand = random(SEED);
    const mnt = mkdtempSync(join(tmpdir(), 'vouch-disk-'));
    const failed = mount(mnt, TMPFS);
    t.is(failed, undefined);
    t.teardown(() => {
      umount(mnt);
      rmSync(mnt, { recursive: true, force: true });
    });
    try {
      const dir = join(mnt, 'vouch');
      const user = join(mnt, 'user');
      mkdirSync(user);
      const env = { VOUCH_HOME: dir, HOME: user, USER: 'alice' };
      t.is((await runCli(['init', '--address', 'alice@example.org'], { env })).code, 0);
      setConfig(dir, { challenge: { enabled: false } });
      const home: TestHome = { dir, user, maildir: join(user, 'Maildir'), env };
      t.is((await runCli(['whitelist', 'add', '@friends.test'], { env })).code, 0);

      const work = mkdtempSync(join(tmpdir(), 'vouch-disk-msg-'));
      const expected = new Map<string, Expect>();
      const retry: { sid: string; args: NodeJS.ProcessEnv; input: { file: string }; postfix: boolean }[] = [];
      const answers = new Map<string, number>();
      const halfWritten: string[] = [];
      let sidNo = 0;
      const filler = join(mnt, 'filler');

      for (let round = 0; round < ROUNDS; round++) {
        // Brim full, then a little space: enough for the store's small rows but not for big mail.
        for (const free of [0, 64 << 10, 300 << 10]) {
          fill(filler, free);
          for (const big of [false, true]) {
            for (const kind of ['white', 'unknown'] as const) {
              for (const postfix of [false, true]) {
                const sid = `d${++sidNo}`;
                const sender = kind === 'white' ? `${sid}@friends.test` : `${sid}@strangers.test`;
                const msg = traced(sid, sender, big ? 400_000 + Math.floor(rand() * 200_000) : 800);
                const input = messageFile(work, sid, msg);
                const e = postfix ? postfixEnv(home, sender) : qmailEnv(home, sender);
                const r: Run = await runCli(['deliver'], { env: e, input });
                const key = `${postfix ? 'postfix' : 'qmail'} ${r.code}${r.code === 0 || r.code === 99 ? '' : ` "${r.stdout.trim().replace(/^vouch: /, '')}"`}`;
                answers.set(key, (answers.get(key) ?? 0) + 1);
                const ok = postfix ? r.code === 0 : r.code === 99;
                const temp = postfix ? r.code === 75 : r.code === 111;
                t.true(ok || temp, `${sid}: exit ${r.code} ${r.stdout}${r.stderr}`);
                if (temp) {
                  t.regex(r.stdout, /^vouch: (the disk is full \(#4\.3\.1\)|cannot (open|use) the pending store \(#4\.3\.0\))\n$/, r.stdout);
                  retry.push({ sid, args: e, input, postfix });
                }
                expected.set(sid, kind === 'white' ? { where: 'maildir', bytes: inMaildir(sender, msg) } : { where: 'held', bytes: Buffer.from(msg) });
                // Whatever is in new/ at this moment is whole.
                for (const name of readdirSync(join(home.maildir, 'new'))) {
                  const bytes = readFileSync(join(home.maildir, 'new', name));
                  const m = /Message-ID: <([^@]+)@/.exec(bytes.subarray(0, 4096).toString('latin1'));
                  const want = m?.[1] === undefined ? undefined : expected.get(m[1]);
                  if (!(want?.where === 'maildir' && want.bytes.equals(bytes))) halfWritten.push(name);
                }
              }
            }
          }
          rmSync(filler);
        }
      }
      t.deepEqual(halfWritten, []);
      t.true(retry.length > 0, 'no delivery ever met the full disk');
      // Both places that can meet the full disk did: the store, and the Maildir after the store.
      t.true([...answers.keys()].some((k) => /disk is full/.test(k)), 'no Maildir write met the full disk');
      t.true([...answers.keys()].some((k) => /pending store/.test(k)), 'no store write met the full disk');

      // Space is back: the MTA retries, and everything goes through.
      const stats = new MtaStats();
      for (const r of retry) {
        const last = await untilDone(['deliver'], { kind: 'none' }, stats, {
          env: r.args,
          input: r.input,
          rand,
          randomMs: 0,
          done: r.postfix ? (x) => x.code === 0 : qmailDone,
          temporary: r.postfix ? (x) => x.code === 75 : qmailTemporary,
        });
        t.regex(last.stdout, /^vouch: (delivered|held)/, `${r.sid}: ${last.stdout}${last.stderr}`);
      }
      t.deepEqual(stats.bad, []);
      const inv = await inventory(join(dir, 'vouch.db'), home.maildir);
      const a = audit(inv, expected);
      t.true(clean(a), JSON.stringify(a).slice(0, 1500));
      t.deepEqual(inv.integrity, ['ok']);
      t.deepEqual(inv.tmp, [], 'a failed write left its tmp file behind');
      const fsck = await runCli(['fsck'], { env });
      t.is(fsck.code, 0, fsck.stdout);
      t.log(`${ROUNDS} round(s) on a ${TMPFS >> 20} MB tmpfs: ${expected.size} deliveries, answers ${[...answers].map(([k, v]) => `${k}: ${v}`).join(', ')}; ${retry.length} retried once space returned, all delivered or held; ${a.lost.length} lost, ${a.truncated.length} truncated`);
    } finally {
      umount(mnt);
    }
  });
}
