// `node dist/bench/classifier.js [seed] [n] [hard] [--deliver]`: how well the classifier, enabled as the README
// says, tells spam from ham on a generated corpus (test/corpus.ts; seed 2026, n = 1000 of each,
// 5% of the spam disguised as personal mail, by default). One half of each kind trains a fresh word list through `vouch learn` (ham as a
// Maildir, spam as an mbox, as a user would bootstrap it); the other half is then judged the way
// a delivery judges mail that would otherwise be challenged (the never-challenge rules first,
// then bogofilter with the default classifier settings; with --deliver, each test message goes
// through the real `vouch deliver` and its log line is read). Prints and returns two figures:
// spam held without a challenge (target ≥ 90%) and ham still challenged (target ≥ 97%).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../agent/home/config.js';
import { readHeaders } from '../agent/mail/header.js';
import { addressKey } from '../agent/mail/address.js';
import { suppression } from '../agent/policy/suppress.js';
import { judge } from '../agent/classify/bogofilter.js';
import { corpus, HARD, mbox, type Generated } from '../test/corpus.js';
import { makeHome, qmailEnv, vouch } from '../test/helpers.js';

export interface ClassifierFigures {
  readonly seed: number;
  readonly hard: number;
  readonly trainHam: number;
  readonly trainSpam: number;
  readonly testHam: number;
  readonly testSpam: number;
  /** Spam that would have been challenged and was held silently, in %. */
  readonly spamHeld: number;
  /** Ham that would have been challenged and still was, in %. */
  readonly hamChallenged: number;
  /** Messages bogofilter called unsure (counted when judged in process, not with --deliver). */
  readonly unsure: { readonly ham: number; readonly spam: number };
  readonly trainSeconds: number;
  readonly judgeMsPerMessage: number;
}

export async function measureClassifier(seed = 2026, n = 1000, hard = HARD, throughDeliver = false): Promise<ClassifierFigures> {
  const all = corpus(seed, n, hard);
  const ham = all.filter((m) => m.kind === 'ham');
  const spam = all.filter((m) => m.kind === 'spam');
  const half = <T>(xs: readonly T[], k: 0 | 1) => xs.filter((_, i) => i % 2 === k);
  const h = await makeHome({
    config: {
      classifier: { enabled: true },
      // Every test message from a new sender, none of them rate limited; requests go to a file.
      // Generated mail carries no authentication: the authentication policy is off, so that what
      // is measured is the classifier's own part.
      send: { transport: 'file' },
      challenge: { per_domain_hourly: 1_000_000, global_hourly: 1_000_000, require: 'none' },
    },
  });
  // Training: the inbox as a Maildir, the junk folder as an mbox.
  const inbox = join(h.user, 'train-inbox');
  mkdirSync(join(inbox, 'cur'), { recursive: true });
  mkdirSync(join(inbox, 'new'), { recursive: true });
  mkdirSync(join(inbox, 'tmp'), { recursive: true });
  half(ham, 0).forEach((m, i) => writeFileSync(join(inbox, 'cur', `${1_700_000_000 + i}.M${i}P1.bench:2,S`), m.bytes));
  const junk = join(h.user, 'train-junk.mbox');
  writeFileSync(junk, mbox(half(spam, 0)));
  const t0 = Date.now();
  const learned = await vouch(['learn', '--ham', inbox, '--spam', junk], { env: h.env, timeoutMs: 600_000 });
  if (learned.code !== 0) throw new Error(`vouch learn failed: ${learned.stderr}${learned.stdout}`);
  const trainSeconds = (Date.now() - t0) / 1000;

  const config = loadConfig(h.dir, h.env);
  const wouldChallenge = (m: Generated) => {
    const headers = readHeaders(m.bytes, config.delivery.header_limit);
    return suppression({ sender: m.sender, senderKey: addressKey(m.sender), own: config.identity.address, headers, authservIds: [] }) === undefined;
  };
  let spamAsked = 0;
  let spamHeld = 0;
  let hamAsked = 0;
  let hamStill = 0;
  const unsure = { ham: 0, spam: 0 };
  const t1 = Date.now();
  let judged = 0;
  for (const m of [...half(ham, 1), ...half(spam, 1)]) {
    if (!wouldChallenge(m)) continue;
    judged += 1;
    let held: boolean;
    if (throughDeliver) {
      // The real `vouch deliver`, as qmail-local runs it: its log line says what happened. The
      // corpus reuses names, so the envelope sender is made unique (no rate limit applies); the
      // message, From: included, is as generated.
      const r = await vouch(['deliver'], { env: qmailEnv(h, `t${judged}.${m.sender}`), input: m.bytes });
      if (r.code !== 99 || /usual rules/.test(r.stdout)) throw new Error(`delivery: ${r.code} ${r.stdout}`);
      held = /challenge suppressed \(classifier: /.test(r.stdout);
      if (!held && !/challenge sent/.test(r.stdout)) throw new Error(`neither challenged nor held by the classifier: ${r.stdout}`);
    } else {
      const o = await judge(config.classifier, m.bytes);
      if (o.failure !== undefined) throw new Error(`the classifier failed: ${o.failure}`);
      if (o.signal['verdict'] === 'unsure') unsure[m.kind] += 1;
      held = o.suppress !== undefined;
    }
    if (m.kind === 'spam') {
      spamAsked += 1;
      if (held) spamHeld += 1;
    } else {
      hamAsked += 1;
      if (!held) hamStill += 1;
    }
  }
  return {
    seed,
    hard,
    trainHam: half(ham, 0).length,
    trainSpam: half(spam, 0).length,
    testHam: hamAsked,
    testSpam: spamAsked,
    spamHeld: (100 * spamHeld) / Math.max(1, spamAsked),
    hamChallenged: (100 * hamStill) / Math.max(1, hamAsked),
    unsure,
    trainSeconds,
    judgeMsPerMessage: (Date.now() - t1) / Math.max(1, judged),
  };
}

if (process.argv[1]?.endsWith('classifier.js')) {
  const seed = Number(process.argv[2] ?? 2026);
  const n = Number(process.argv[3] ?? 1000);
  const hard = Number(process.argv[4] ?? HARD);
  const viaDeliver = process.argv.includes('--deliver');
  const f = await measureClassifier(seed, n, hard, viaDeliver);
  console.log(`classifier on a generated corpus (seed ${f.seed}, ${(f.hard * 100).toFixed(0)}% of spam disguised as personal mail): trained on ${f.trainHam} ham + ${f.trainSpam} spam in ${f.trainSeconds.toFixed(1)} s`);
  console.log(`  tested on ${f.testSpam} spam: ${f.spamHeld.toFixed(1)}% held without a challenge (target ≥ 90%)`);
  console.log(`  tested on ${f.testHam} ham: ${f.hamChallenged.toFixed(1)}% still challenged (target ≥ 97%)`);
  if (viaDeliver) console.log(`  ${f.judgeMsPerMessage.toFixed(1)} ms a delivery (vouch deliver)`);
  else console.log(`  unsure: ${f.unsure.spam} spam, ${f.unsure.ham} ham; ${f.judgeMsPerMessage.toFixed(1)} ms a classification`);
  process.exitCode = f.spamHeld >= 90 && f.hamChallenged >= 97 ? 0 : 1;
}
