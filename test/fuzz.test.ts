// Hostile mail: fast-check arbitraries and mutated fixtures through deliverMessage in-process (fast),
// the named worst cases and a sample through the spawned CLI (the real thing, measured), and
// `vouch pending show` on the nastiest held ones. Every message ends delivered or held, byte for byte,
// with an allowed exit code; nothing is parsed on the delivery path, and show parses within limits.

import test from 'ava';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliverFromEnvironment } from '../agent/deliver/deliver.js';
import { Store } from '../agent/store/store.js';
import { makeHome, postfixEnv, qmailEnv, vouch, type TestHome } from './helpers.js';
import { fixtures, hostile, nastyCases } from './stress/hostile.js';
import { messageFile, runCli } from './stress/run.js';
import { SEED, size } from './stress/size.js';

const RUNS = size(1000, 10_000);
const SAMPLE = size(20, 200);
const SCALE = size(
  { deep: 10_000, parts: 20_000, base64: 3 << 20, headerLine: 1 << 20, headers: 50_000 },
  { deep: 10_000, parts: 100_000, base64: 100 << 20, headerLine: 1 << 20, headers: 100_000 },
);
/** Small runs lower max_size so that the "above max_size: stored, never parsed" path is taken too. */
const MAX_SIZE = size('2M', '64M');

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function home(): Promise<TestHome> {
  const h = await makeHome({ config: { challenge: { enabled: false }, delivery: { max_size: MAX_SIZE } } });
  const r = await vouch(['whitelist', 'add', '@friends.test'], { env: h.env });
  if (r.code !== 0) throw new Error(r.stderr);
  return h;
}

function newFiles(maildir: string): string[] {
  return readdirSync(join(maildir, 'new')).map((n) => sha(readFileSync(join(maildir, 'new', n)))).sort();
}

const mb = (kb: number | undefined) => (kb === undefined ? '?' : `${Math.round(kb / 1024)} MB`);

test('fast-check: hostile and mutated messages each end delivered or held, byte for byte', async (t) => {
  t.timeout(size(3, 60) * 60_000);
  const h = await home();
  const store = await Store.open(join(h.dir, 'vouch.db'));
  t.teardown(() => store.close());
  const delivered = new Set<string>();
  const seen = new Set<string>();
  let n = 0;
  let held = 0;
  let slowest = 0;
  const started = Date.now();
  await fc.assert(
    fc.asyncProperty(hostile(fixtures()), async (raw) => {
      n += 1;
      const sender = n % 3 === 0 ? `f${n}@friends.test` : n % 3 === 1 ? `u${n}@strangers.test` : '';
      const env = qmailEnv(h, sender);
      const t0 = Date.now();
      const report = await deliverFromEnvironment(raw, { home: h.dir, mta: 'qmail', env, now: Date.now });
      slowest = Math.max(slowest, Date.now() - t0);
      if (report.outcome !== 'done') return false;
      const key = sha(Buffer.concat([Buffer.from(`${sender}\0alice@example.org\0`), raw]));
      const fresh = !seen.has(key);
      seen.add(key);
      if (/^vouch: delivered: /.test(report.line)) {
        if (!sender.endsWith('@friends.test')) return false;
        delivered.add(sha(Buffer.concat([Buffer.from(`${env['RPLINE']}${env['DTLINE']}`), raw])));
        return true;
      }
      const id = /^vouch: held ([a-z2-7]{13}): /.exec(report.line)?.[1];
      if (id === undefined) return false;
      if (fresh) held += 1;
      const stored = await store.raw(id);
      return stored !== undefined && stored.equals(raw);
    }),
    { numRuns: RUNS, seed: SEED, endOnFailure: true },
  );
  t.deepEqual(newFiles(h.maildir), [...delivered].sort());
  t.is(await store.countHeld(), held);
  t.deepEqual(await store.integrityCheck(), ['ok']);
  t.log(`seed ${SEED}: ${n} messages (${delivered.size} delivered, ${held} held) in ${((Date.now() - started) / 1000).toFixed(1)} s; slowest ${slowest} ms; test process max RSS ${mb(process.resourceUsage().maxRSS)}`);
});

test('the worst cases go through the spawned CLI held and delivered byte for byte, and pending show finishes on each', async (t) => {
  t.timeout(size(4, 60) * 60_000);
  const h = await home();
  const work = mkdtempSync(join(tmpdir(), 'vouch-fuzz-'));
  const cases = nastyCases(SCALE);
  const held: { name: string; id: string; size: number }[] = [];
  let maxDeliverRss = 0;
  const lines: string[] = [];
  for (const [i, c] of cases.entries()) {
    const input = messageFile(work, `case${i}`, c.bytes);
    // Unknown sender: held; the store keeps the exact bytes.
    const u = await runCli(['deliver'], { env: qmailEnv(h, `u${i}@strangers.test`), input, measure: true, timeoutMs: 600_000 });
    t.is(u.code, 99, `${c.name}: ${u.stdout}${u.stderr}`);
    const id = /held ([a-z2-7]{13})/.exec(u.stdout)?.[1];
    t.truthy(id, `${c.name}: ${u.stdout}`);
    if (id) held.push({ name: c.name, id, size: c.bytes.length });
    // Whitelisted sender: delivered (the loop case is held), exactly these bytes after the two lines.
    const before = new Set(readdirSync(join(h.maildir, 'new')));
    const w = await runCli(['deliver'], { env: qmailEnv(h, `w${i}@friends.test`), input, measure: true, timeoutMs: 600_000 });
    t.is(w.code, 99, `${c.name}: ${w.stdout}${w.stderr}`);
    const added = readdirSync(join(h.maildir, 'new')).filter((n) => !before.has(n));
    if (/loop/.test(c.name)) t.deepEqual(added, []);
    else {
      t.is(added.length, 1, c.name);
      const file = readFileSync(join(h.maildir, 'new', added[0] ?? ''));
      t.true(file.equals(Buffer.concat([Buffer.from(`Return-Path: <w${i}@friends.test>\nDelivered-To: alice@example.org\n`), c.bytes])), c.name);
    }
    maxDeliverRss = Math.max(maxDeliverRss, u.maxRssKb ?? 0, w.maxRssKb ?? 0);
    lines.push(`${c.name} (${c.bytes.length} B): held in ${u.ms} ms / ${mb(u.maxRssKb)}, delivered in ${w.ms} ms / ${mb(w.maxRssKb)}`);
  }
  const store = await Store.open(join(h.dir, 'vouch.db'));
  for (const [i, c] of cases.entries()) {
    const hit = held.find((x) => x.name === c.name);
    const raw = hit && (await store.raw(hit.id));
    t.true(raw?.equals(c.bytes), `${c.name} stored byte for byte`);
  }
  t.deepEqual(await store.integrityCheck(), ['ok']);
  await store.close();

  // pending show parses below max_size in a worker with a time and heap limit; above it, never.
  let maxShowRss = 0;
  for (const x of held) {
    const s = await runCli(['pending', 'show', x.id], { env: h.env, measure: true, timeoutMs: 120_000 });
    t.false(s.timedOut, `${x.name}: pending show hung`);
    t.is(s.code, 0, `${x.name}: ${s.stderr}`);
    t.regex(s.stdout, new RegExp(`^Id: +${x.id}\n`), x.name);
    // eslint-disable-next-line no-control-regex
    t.notRegex(s.stdout, /[\u0000-\u0008\u001b]/, `${x.name}: control characters reach the terminal`);
    if (x.size > 2 << 20 && MAX_SIZE === '2M') t.regex(s.stdout, /larger than delivery.max_size/, x.name);
    maxShowRss = Math.max(maxShowRss, s.maxRssKb ?? 0);
    lines.push(`show ${x.name}: exit ${s.code} in ${s.ms} ms / ${mb(s.maxRssKb)}${/body not decoded/.test(s.stdout) ? ` (not decoded: ${/body not decoded: ([^;]*)/.exec(s.stdout)?.[1] ?? ""})` : ''}`);
  }
  t.log(`${cases.length} worst cases, max_size ${MAX_SIZE}: deliver peak RSS ${mb(maxDeliverRss)}, pending show peak RSS ${mb(maxShowRss)}`);
  for (const l of lines) t.log(l);
});

test('a sample of hostile messages through the spawned CLI under qmail and Postfix: 99 or 0, never anything else', async (t) => {
  t.timeout(size(3, 30) * 60_000);
  const h = await home();
  const work = mkdtempSync(join(tmpdir(), 'vouch-fuzz-'));
  const sample = fc.sample(hostile(fixtures()), { numRuns: SAMPLE, seed: SEED + 1 });
  let delivered = 0;
  for (const [i, raw] of sample.entries()) {
    const input = messageFile(work, `s${i}`, raw);
    const q = await runCli(['deliver'], { env: qmailEnv(h, i % 2 ? `q${i}@friends.test` : `q${i}@strangers.test`), input });
    t.is(q.code, 99, `${q.stdout}${q.stderr}`);
    t.regex(q.stdout, /^vouch: (delivered:|held [a-z2-7]{13}:) .*\(qmail\)\n$/);
    // Postfix pipes the message; 0 is its only success code.
    const p = await runCli(['deliver'], { env: postfixEnv(h, i % 2 ? `p${i}@friends.test` : `p${i}@strangers.test`), input: raw });
    t.is(p.code, 0, `${p.stdout}${p.stderr}`);
    t.regex(p.stdout, /^vouch: (delivered:|held [a-z2-7]{13}:) .*\(postfix\)\n$/);
    delivered += /delivered/.test(q.stdout) ? 1 : 0;
  }
  t.true(delivered > 0);
  t.log(`${sample.length} sampled messages through the CLI, twice each (qmail and Postfix)`);
});
