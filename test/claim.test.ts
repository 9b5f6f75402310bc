// One challenge per held message, whoever delivers it: identical copies delivered at the same moment
// (real `vouch deliver` processes) send one request, every request counts against the caps before it
// goes out, and a claim left by a delivery that died is taken over by its retry or by `vouch fsck`.

import test from 'ava';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { fsck } from '../agent/cli/fsck.js';
import { loadConfig } from '../agent/home/config.js';
import { claimAbandoned, claimLease, claimNote, readClaim } from '../agent/store/claim.js';
import { Store } from '../agent/store/store.js';
import { fakeSendmail } from './fake-sendmail.js';
import { makeHome, message, pendingList, qmailEnv, vouch, type TestHome } from './helpers.js';

async function challengedHome(globalHourly: number): Promise<TestHome> {
  return makeHome({ config: { challenge: { global_hourly: globalHourly, per_domain_hourly: 1000 } } });
}

test('twenty identical copies delivered at once by twenty vouch deliver processes send one challenge', async (t) => {
  const home = await challengedHome(2);
  const sendmail = fakeSendmail(home);
  // A sendmail that takes its time, as a real one may: the copies that arrive meanwhile find the
  // message held and its challenge not yet marked sent.
  sendmail.slowBy(2);
  const msg = message({ subject: 'twenty at once' });
  const runs = await Promise.all(Array.from({ length: 20 }, () => vouch(['deliver'], { env: qmailEnv(home, 'bob@example.com'), input: msg, timeoutMs: 120_000 })));
  t.deepEqual(runs.map((r) => r.code), Array(20).fill(99), runs.map((r) => r.stdout + r.stderr).join(''));
  t.is(sendmail.sent().length, 1);
  t.is(runs.filter((r) => /challenge sent/.test(r.stdout)).length, 1);
  const held = await pendingList(home);
  t.is(held.length, 1);
  t.is(held[0]?.challenge, 'sent');
});

test('twenty different unknown senders at once get no more challenges than global_hourly', async (t) => {
  const home = await challengedHome(2);
  const sendmail = fakeSendmail(home);
  const runs = await Promise.all(
    Array.from({ length: 20 }, (_v, i) => vouch(['deliver'], { env: qmailEnv(home, `s${i}@example${i}.com`), input: message({ from: `s${i}@example${i}.com` }), timeoutMs: 120_000 })),
  );
  t.deepEqual(runs.map((r) => r.code), Array(20).fill(99));
  t.is(sendmail.sent().length, 2);
  const held = await pendingList(home);
  t.is(held.length, 20);
  t.is(held.filter((m) => m.challenge === 'sent').length, 2);
  t.is(held.filter((m) => m.challenge === 'suppressed' && m.challenge_note === 'global hourly cap').length, 18);
});

test('a delivery killed after its hold commits leaves the challenge to its retry, which sends it once', async (t) => {
  const home = await challengedHome(60);
  const sendmail = fakeSendmail(home);
  const msg = message({ subject: 'killed' });
  const env = qmailEnv(home, 'bob@example.com');
  const killed = await vouch(['deliver'], { env: { ...env, VOUCH_FAILPOINT: 'store:after-commit' }, input: msg });
  t.is(killed.signal, 'SIGKILL');
  t.is(sendmail.sent().length, 0);
  t.is((await pendingList(home))[0]?.challenge, 'sending');
  const retry = await vouch(['deliver'], { env, input: msg });
  t.is(retry.code, 99);
  t.regex(retry.stdout, /challenge sent/);
  const again = await vouch(['deliver'], { env, input: msg });
  t.regex(again.stdout, /already held/);
  t.is(sendmail.sent().length, 1);
  t.is((await pendingList(home))[0]?.challenge, 'sent');
});

test('a claim left by a delivery that died is sent by vouch fsck, once', async (t) => {
  const home = await challengedHome(60);
  const sendmail = fakeSendmail(home);
  const msg = message({ subject: 'left behind' });
  const env = qmailEnv(home, 'bob@example.com');
  t.is((await vouch(['deliver'], { env: { ...env, VOUCH_FAILPOINT: 'store:after-commit' }, input: msg })).signal, 'SIGKILL');
  const first = await vouch(['fsck'], { env: home.env });
  t.is(first.code, 0);
  t.regex(first.stdout, /challenges: 1 abandoned challenge\(s\) sent/);
  const second = await vouch(['fsck'], { env: home.env });
  t.regex(second.stdout, /challenges: 0 abandoned challenge\(s\) sent/);
  t.regex((await vouch(['deliver'], { env, input: msg })).stdout, /already held/);
  t.is(sendmail.sent().length, 1);
});

test('a claim by a living delivery is left alone by retries and fsck until its lease runs out', async (t) => {
  const home = await challengedHome(60);
  const sendmail = fakeSendmail(home);
  const msg = message({ subject: 'slow sender' });
  const env = qmailEnv(home, 'bob@example.com');
  t.is((await vouch(['deliver'], { env: { ...env, VOUCH_FAILPOINT: 'store:after-commit' }, input: msg })).signal, 'SIGKILL');
  // Make the claim this test process's own: a delivery still at work.
  const claimedAt = Date.now();
  const store = await Store.open(join(home.dir, 'vouch.db'));
  t.teardown(() => store.close());
  await store.db.run(`UPDATE messages SET challenge_note = ?`, [claimNote({ at: claimedAt, pid: process.pid, host: hostname() })]);
  const retry = await vouch(['deliver'], { env, input: msg });
  t.regex(retry.stdout, /already held, its challenge on its way/);
  const config = loadConfig(home.dir, home.env);
  t.is((await fsck(store, config, claimedAt + 1000)).challengesSent, 0);
  t.is(sendmail.sent().length, 0);
  t.is((await fsck(store, config, claimedAt + claimLease(config.delivery.deadline))).challengesSent, 1);
  t.is(sendmail.sent().length, 1);
  t.is((await fsck(store, config, claimedAt + 2 * claimLease(config.delivery.deadline))).challengesSent, 0);
});

test('when a challenge may be taken over: unclaimed, unreadable, past its lease, or its process gone', (t) => {
  const host = 'mx.example.org';
  const view = { now: 1_000_000, leaseMs: 420_000, host, alive: (pid: number) => pid === 42 };
  const note = (at: number, pid: number, h = host) => claimNote({ at, pid, host: h });
  const table: [string, string, boolean][] = [
    ['pending', '', true],
    ['sending', note(900_000, 42), false], // alive, young
    ['sending', note(900_000, 43), true], // its process is gone
    ['sending', note(900_000, 43, 'other.example.org'), false], // another host: only the lease tells
    ['sending', note(580_000, 42), true], // past the lease
    ['sending', note(580_001, 42, 'other.example.org'), false],
    ['sending', 'garbage', true],
    ['sent', '', false],
    ['suppressed', 'global hourly cap', false],
    ['failed', 'ESENDMAIL', false],
  ];
  t.deepEqual(table.map(([s, n]) => claimAbandoned(s, n, view)), table.map((r) => r[2]));
  t.deepEqual(readClaim(note(5, 6, 'MX.Example.ORG')), { at: 5, pid: 6, host: 'mx.example.org' });
});
