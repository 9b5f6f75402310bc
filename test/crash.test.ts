// Kill at any point: a retrying MTA against the built CLI, every `vouch deliver` and `vouch pending
// release` killed with SIGKILL at every named failpoint and at random moments, then retried until it
// answers. Afterwards every message is in exactly one place, whole, once.

import test from 'ava';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../agent/home/config.js';
import { fsck } from '../agent/cli/fsck.js';
import { Store } from '../agent/store/store.js';
import { confirmTag } from '../agent/tags/tags.js';
import { makeHome, qmailEnv, vouch } from './helpers.js';
import { audit, clean, inMaildir, inventory, traced, type Expect } from './stress/ledger.js';
import { MtaStats, qmailDone, qmailTemporary, untilDone, type KillPlan } from './stress/mta.js';
import { messageFile, runCli } from './stress/run.js';
import { pool, random, SEED, size } from './stress/size.js';

const DELIVERIES = size(150, 1000);

/** The failpoints each kind of step passes through, in the order a delivery reaches them. */
const POINTS = {
  direct: ['journal:after-claim', 'maildir:after-tmp-write', 'maildir:after-fsync', 'maildir:after-link', 'deliver:before-exit'],
  hold: ['store:after-commit', 'deliver:before-exit'],
  confirm: ['lists:after-map', 'maildir:after-tmp-write', 'maildir:after-fsync', 'maildir:after-link', 'release:after-maildir', 'confirm:after-use', 'deliver:before-exit'],
  release: ['maildir:after-tmp-write', 'maildir:after-fsync', 'maildir:after-link', 'release:after-maildir'],
} as const;
type Step = keyof typeof POINTS;

type Group =
  | { readonly kind: 'direct'; readonly n: number }
  | { readonly kind: 'hold'; readonly n: number }
  | { readonly kind: 'confirm'; readonly n: number }
  | { readonly kind: 'release'; readonly n: number; readonly whitelist: boolean };

test('messages survive SIGKILL at every failpoint and at random moments: none lost, none doubled, none truncated', async (t) => {
  t.timeout(size(4, 60) * 60_000);
  const started = Date.now();
  const rand = random(SEED);
  t.log(`seed ${SEED} (VOUCH_SEED=${SEED} replays it)`);
  const home = await makeHome({ config: { challenge: { enabled: false } } });
  const w = await vouch(['whitelist', 'add', '@friends.test'], { env: home.env });
  t.is(w.code, 0);
  const secret = readFileSync(join(home.dir, 'secret'));
  const work = mkdtempSync(join(tmpdir(), 'vouch-crash-'));

  // The plan: groups of steps per sender, each group sequential, groups run side by side.
  const groups: Group[] = [];
  let planned = 0;
  while (planned < DELIVERIES) {
    const r = rand();
    const n = 1 + Math.floor(rand() * 2);
    const g: Group = r < 0.35 ? { kind: 'direct', n: 1 } : r < 0.55 ? { kind: 'hold', n } : r < 0.8 ? { kind: 'confirm', n } : { kind: 'release', n, whitelist: rand() < 0.5 };
    groups.push(g);
    planned += g.kind === 'confirm' ? n + 2 : g.n;
  }

  // Each step first meets every failpoint on its path in turn, then a mix of failpoints, random
  // moments and clean runs.
  const seen: Record<Step, number> = { direct: 0, hold: 0, confirm: 0, release: 0 };
  const planFor = (step: Step): KillPlan => {
    const points: readonly string[] = POINTS[step];
    const i = seen[step]++;
    if (i < points.length) return { kind: 'failpoint', name: points[i] as string };
    const r = rand();
    if (r < 0.4) return { kind: 'failpoint', name: points[Math.floor(rand() * points.length)] as string };
    if (r < 0.85) return { kind: 'random', ms: 10 + rand() * 220 };
    return { kind: 'none' };
  };

  const stats = new MtaStats();
  const expected = new Map<string, Expect>();
  const halfDoneConfirms: { id: string; sender: string }[] = [];
  const whitelistedSids = new Set<string>();
  let deliveries = 0;
  let sidNo = 0;
  const retry = { rand, randomMs: 230, done: qmailDone, temporary: qmailTemporary };

  const deliver = async (sender: string, step: 'direct' | 'hold'): Promise<string> => {
    const sid = `s${++sidNo}`;
    const msg = traced(sid, sender, 200 + Math.floor(rand() * 60_000));
    deliveries += 1;
    const r = await untilDone(['deliver'], planFor(step), stats, { ...retry, env: qmailEnv(home, sender), input: messageFile(work, sid, msg) });
    if (step === 'direct') {
      expected.set(sid, { where: 'maildir', bytes: inMaildir(sender, msg) });
      whitelistedSids.add(sid);
    } else if (step === 'hold') expected.set(sid, { where: 'held', bytes: Buffer.from(msg) });
    return `${sid} ${r.stdout}`;
  };

  await pool(groups, 3, async (g, gi) => {
    if (g.kind === 'direct') {
      await deliver(`w${gi}@friends.test`, 'direct');
      return;
    }
    const sender = `${g.kind[0]}${gi}@strangers.test`;
    const held: { sid: string; id: string }[] = [];
    for (let i = 0; i < g.n; i++) {
      const out = await deliver(sender, 'hold');
      const sid = out.split(' ')[0] as string;
      const id = /held ([a-z2-7]{13})/.exec(out)?.[1];
      if (id) held.push({ sid, id });
      else stats.bad.push(`hold of ${sid} did not say held: ${out}`);
    }
    if (g.kind === 'hold') return;
    for (const h of held) {
      const e = expected.get(h.sid);
      if (e?.where === 'held') expected.set(h.sid, { where: 'maildir', bytes: inMaildir(sender, e.bytes) });
    }
    if (g.kind === 'release') {
      const args = ['pending', 'release', ...held.map((h) => h.id), ...(g.whitelist ? ['--whitelist'] : [])];
      await untilDone(args, planFor('release'), stats, {
        ...retry,
        env: home.env,
        // A retry after a kill past the last release finds nothing left to do: "not held".
        done: (r) => r.code === 0 || (r.code === 1 && /not held/.test(r.stdout)),
        temporary: () => false,
      });
      return;
    }
    // A confirmation reply to the first held message: releases them all and whitelists the sender.
    const first = held[0];
    if (!first) return;
    const reply = `c${++sidNo}`;
    const tag = confirmTag(secret, first.id, sender);
    deliveries += 1;
    const confirm = await untilDone(['deliver'], planFor('confirm'), stats, {
      ...retry,
      env: qmailEnv(home, sender, tag),
      input: messageFile(work, reply, traced(reply, sender, 300)),
    });
    // Killed after the confirmation was used, the retry finds the address used and the sender
    // whitelisted: the reply is delivered like any later mail to that address.
    const retried = confirm.kills > 0 && /delivered: whitelisted sender/.test(confirm.stdout);
    if (!/confirmed/.test(confirm.stdout) && !retried) stats.bad.push(`confirm ${reply}: ${confirm.stdout}`);
    expected.set(reply, retried ? { where: 'gone-or-maildir', bytes: inMaildir(sender, readFileSync(join(work, reply)), `alice-${tag}@example.org`) } : { where: 'gone' });
    if (confirm.kills > 0) halfDoneConfirms.push({ id: first.id, sender });
    // The sender is whitelisted now: the next message goes straight in.
    const next = await deliver(sender, 'direct');
    if (!/delivered: whitelisted/.test(next)) stats.bad.push(`after confirm: ${next}`);
  });

  const inv = await inventory(join(home.dir, 'vouch.db'), home.maildir);
  const a = audit(inv, expected);
  const doubledWhitelisted = a.duplicated.filter((s) => whitelistedSids.has(s)).length;
  const checked = await runCli(['fsck'], { env: home.env });
  const left = readdirSync(join(home.maildir, 'tmp'));
  t.log(`${deliveries} deliveries and ${stats.firstRuns - deliveries} CLI releases: ${stats.summary()}`);
  t.log(`audit of ${a.checked} messages: ${a.lost.length} lost, ${a.duplicated.length} duplicated (${doubledWhitelisted} whitelisted delivered twice), ${a.truncated.length} truncated, ${a.heldTwice.length} held twice, ${a.misplaced.length} misplaced; ${inv.tmp.length} file(s) left in tmp/ before fsck; ${halfDoneConfirms.length} confirms killed half-way; ${((Date.now() - started) / 1000).toFixed(0)} s`);
  t.log(`fsck: ${checked.stdout.trim()}; ${left.length} abandoned tmp file(s) wait for the 36 hours`);

  t.deepEqual(stats.bad, []);
  t.true(clean(a), JSON.stringify(a).slice(0, 2000));
  t.is(doubledWhitelisted, 0);
  t.deepEqual(inv.untraced, []);
  // A kill between link and unlink leaves a second link to the file in new/: fsck removes it at once.
  // A kill before the link leaves a tmp file never linked: fsck removes it once it is 36 hours old.
  t.true(left.every((n) => statSync(join(home.maildir, 'tmp', n)).nlink === 1));
  const later = await Store.open(join(home.dir, 'vouch.db'));
  const late = await fsck(later, loadConfig(home.dir, home.env), Date.now() + 37 * 3_600_000);
  await later.close();
  t.is(late.tmpRemoved, left.length);
  t.deepEqual(readdirSync(join(home.maildir, 'tmp')), []);
  t.deepEqual(inv.integrity, ['ok']);
  t.is(checked.code, 0);
  t.regex(checked.stdout, /0 interrupted release/);
  // Every named failpoint on every path was reached and killed the process at least once.
  for (const name of new Set(Object.values(POINTS).flat())) t.true((stats.failpointKills.get(name) ?? 0) > 0, `failpoint ${name} never fired`);
  t.true(stats.randomKills > 0);
  // A confirm killed half-way completed on its retry: its messages are out, the sender whitelisted,
  // the confirm used.
  t.true(halfDoneConfirms.length > 0);
  for (const c of halfDoneConfirms) {
    t.true(inv.confirmsUsed.has(c.id), `confirm ${c.id} not marked used`);
    t.true(inv.whitelist.has(c.sender), `${c.sender} not whitelisted`);
  }
});
