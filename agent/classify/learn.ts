// Teaching bogofilter, off the delivery path: the learning queue the user's decisions fill (and
// the ham samples whitelisted deliveries leave in the home), and the bootstrap from the user's
// mailboxes. A message is learned once: the store records what the word list holds for each
// one, and a later contrary decision unlearns the earlier one before it learns the new.

import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HAM_SAMPLES } from '../home/home.js';
import { learnSteps, type LearnFlag, type Learned } from '../policy/classify.js';
import { processAlive } from '../store/claim.js';
import type { LearnItem, Store } from '../store/store.js';
import { register, type ClassifierConfig } from './bogofilter.js';
import { filesIn, messagesInFile } from './mailbox.js';

/** The file in the vouch home that says a `vouch learn` (or `vouch expire`'s learning) is at work:
 * two at once would both take the same queued messages and learn them twice. */
const LOCK = 'learn.lock';

export class LearnBusyError extends Error {
  override readonly name = 'LearnBusyError';
}

/** Runs `fn` as the one learner of this home. A lock left by a process that is gone is taken over. */
export async function asOnlyLearner<T>(home: string, fn: () => Promise<T>): Promise<T> {
  const file = join(home, LOCK);
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 0) throw err;
      const pid = Number.parseInt(readFileSync(file, 'utf8'), 10);
      if (processAlive(pid)) throw new LearnBusyError(`another vouch learn is at work (pid ${pid})`);
      unlinkSync(file);
    }
  }
  try {
    return await fn();
  } finally {
    unlinkSync(file);
  }
}


/** Messages (and bytes) per bogofilter run. */
const BATCH = 250;
const BATCH_BYTES = 8 << 20;

export interface LearnCounts {
  ham: number;
  spam: number;
  /** Earlier verdicts taken back because a later decision said otherwise. */
  unlearned: number;
  /** Messages the word list already held as asked (never learned twice). */
  known: number;
  /** Files or messages that could not be read. */
  unreadable: number;
}

const zero = (): LearnCounts => ({ ham: 0, spam: 0, unlearned: 0, known: 0, unreadable: 0 });

/** The word-list folder, made private; bogofilter's files in it made 0600 after each run (it
 * creates them with the process umask). */
function privateWordlists(cfg: ClassifierConfig): void {
  mkdirSync(cfg.wordlists, { recursive: true, mode: 0o700 });
  chmodSync(cfg.wordlists, 0o700);
}

function tightenWordlists(cfg: ClassifierConfig): void {
  for (const name of readdirSync(cfg.wordlists)) {
    try {
      chmodSync(join(cfg.wordlists, name), 0o600);
    } catch {
      /* gone meanwhile */
    }
  }
}

/** Batches of learning work, run in order: every unlearn of a batch before its learns. */
class Batcher {
  readonly #groups = new Map<LearnFlag, Buffer[]>();
  #marks: { key: string; verdict: Learned }[] = [];
  #n = 0;
  #bytes = 0;

  constructor(
    private readonly cfg: ClassifierConfig,
    private readonly onFlush: (marks: { key: string; verdict: Learned }[]) => Promise<void>,
  ) {}

  async add(key: string, bytes: Buffer, steps: readonly LearnFlag[], verdict: Learned): Promise<void> {
    for (const f of steps) {
      const g = this.#groups.get(f) ?? [];
      g.push(bytes);
      this.#groups.set(f, g);
    }
    this.#marks.push({ key, verdict });
    this.#n += 1;
    this.#bytes += Math.min(bytes.length, this.cfg.max_size);
    if (this.#n >= BATCH || this.#bytes >= BATCH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#n === 0) return;
    for (const f of ['-N', '-S', '-n', '-s'] as const) await register(this.cfg, f, this.#groups.get(f) ?? []);
    const marks = this.#marks;
    this.#groups.clear();
    this.#marks = [];
    this.#n = 0;
    this.#bytes = 0;
    await this.onFlush(marks);
  }
}

/** Moves the ham samples whitelisted deliveries left in the home into the queue. */
async function takeHamSamples(store: Store, home: string, now: number): Promise<number> {
  const dir = join(home, HAM_SAMPLES);
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.ham'));
  } catch {
    return 0;
  }
  for (const name of names) {
    const file = join(dir, name);
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch {
      continue;
    }
    await store.queueLearning(`white:${name.slice(0, -4)}`, 'ham', bytes, now);
    unlinkSync(file);
  }
  return names.length;
}

/** Applies the learning queue: each queued decision learned once, a contrary earlier one
 * unlearned first. A failed bogofilter run leaves its batch queued for the next time. */
export async function applyQueue(store: Store, cfg: ClassifierConfig, home: string, now: number): Promise<LearnCounts> {
  const counts = zero();
  await takeHamSamples(store, home, now);
  privateWordlists(cfg);
  const batch = new Batcher(cfg, (marks) => store.markLearned(marks, now));
  try {
    for (;;) {
      const due: LearnItem[] = await store.learningDue(BATCH);
      if (due.length === 0) break;
      for (const item of due) {
        const steps = learnSteps(item.learned, item.verdict);
        if (item.bytes === null) {
          // Nothing left to learn from (should not happen: a queued row keeps its bytes).
          counts.unreadable += 1;
          await store.markLearned([{ key: item.key, verdict: item.verdict }], now);
          continue;
        }
        if (item.learned !== null) counts.unlearned += 1;
        counts[item.verdict] += 1;
        await batch.add(item.key, item.bytes, steps, item.verdict);
      }
      await batch.flush();
    }
  } finally {
    tightenWordlists(cfg);
  }
  return counts;
}

export interface BootstrapSources {
  readonly ham: readonly string[];
  readonly spam: readonly string[];
}

/** Progress of a bootstrap, in bytes of the files read. */
export type Progress = (done: number, total: number, messages: number) => void;

/** Learns the messages of the user's mailboxes (an inbox as ham, a junk folder as spam). Each
 * message is known by its SHA-256: one learned before as asked is skipped, one learned the other
 * way is unlearned first. */
export async function bootstrap(store: Store, cfg: ClassifierConfig, sources: BootstrapSources, now: number, progress?: Progress): Promise<LearnCounts> {
  const counts = zero();
  const plan: { file: string; size: number; verdict: Learned }[] = [];
  for (const [verdict, paths] of [['ham', sources.ham], ['spam', sources.spam]] as const) {
    for (const p of paths) {
      let files: { file: string; size: number }[];
      try {
        files = filesIn(p);
      } catch (err) {
        throw new Error(`cannot read ${p}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      for (const f of files) plan.push({ ...f, verdict });
    }
  }
  const total = plan.reduce((n, f) => n + f.size, 0);
  privateWordlists(cfg);
  let done = 0;
  let messages = 0;
  const seen = new Map<string, Learned>();
  const batch = new Batcher(cfg, (marks) => store.markLearned(marks, now, true));
  // Keys are looked up a batch at a time: one query, not one a message.
  let waiting: { key: string; bytes: Buffer; verdict: Learned }[] = [];
  const settle = async () => {
    const known = await store.learnedAs(waiting.map((w) => w.key));
    for (const w of waiting) {
      const before = seen.get(w.key) ?? known.get(w.key);
      const steps = learnSteps(before, w.verdict);
      // The same message twice in this run, each time otherwise: its first learning must be done
      // before it can be taken back.
      if (steps.length > 1 && seen.has(w.key)) await batch.flush();
      seen.set(w.key, w.verdict);
      if (steps.length === 0) {
        counts.known += 1;
        continue;
      }
      if (before !== undefined) counts.unlearned += 1;
      counts[w.verdict] += 1;
      await batch.add(w.key, w.bytes, steps, w.verdict);
    }
    waiting = [];
  };
  try {
    for (const f of plan) {
      try {
        for (const m of messagesInFile(f.file, (n) => progress?.(done + n, total, messages))) {
          messages += 1;
          // The key of what bogofilter reads of it: the same message with a longer tail is the same.
          const bytes = m.bytes.subarray(0, cfg.max_size);
          waiting.push({ key: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, bytes, verdict: f.verdict });
          if (waiting.length >= BATCH) await settle();
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === undefined) throw err;
        counts.unreadable += 1;
      }
      done += f.size;
      progress?.(done, total, messages);
    }
    await settle();
    await batch.flush();
  } finally {
    tightenWordlists(cfg);
  }
  return counts;
}
