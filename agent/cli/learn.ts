// `vouch learn`: the learning queue applied, and the bootstrap from the user's mailboxes with a
// progress bar on a terminal (stderr) and a summary. Also run by `vouch expire`.

import { UsageError } from '../failure/failure.js';
import type { Config } from '../home/config.js';
import type { HomePaths } from '../home/home.js';
import { applyQueue, asOnlyLearner, bootstrap, type BootstrapSources, type LearnCounts } from '../classify/learn.js';
import type { Store } from '../store/store.js';

function summary(what: string, c: LearnCounts, ms: number): string {
  const parts = [`${what}: ${c.ham} ham, ${c.spam} spam learned`];
  if (c.unlearned > 0) parts.push(`${c.unlearned} earlier verdict(s) unlearned`);
  if (c.known > 0) parts.push(`${c.known} already learned`);
  if (c.unreadable > 0) parts.push(`${c.unreadable} unreadable`);
  return `${parts.join(', ')} (${(ms / 1000).toFixed(1)} s)`;
}

/** Applies the learning queue; one summary line, or undefined when `quiet` and nothing was due. */
export async function learnQueue(store: Store, config: Config, hp: HomePaths, now: number, quiet = false): Promise<string | undefined> {
  // bogofilter creates its files with our umask: nobody else may read the word list.
  process.umask(0o077);
  const t0 = Date.now();
  const c = await asOnlyLearner(hp.dir, () => applyQueue(store, config.classifier, hp.dir, now));
  if (quiet && c.ham + c.spam + c.unreadable === 0) return undefined;
  return summary('learning queue', c, Date.now() - t0);
}

export async function learnCommand(store: Store, config: Config, hp: HomePaths, sources: BootstrapSources): Promise<void> {
  if (!config.classifier.enabled) throw new UsageError('the classifier is disabled (classifier.enabled = false in config.toml)');
  process.umask(0o077);
  if (sources.ham.length > 0 || sources.spam.length > 0) {
    // The bar `vouch whitelist learn` draws, on a terminal only.
    const { progressBar } = await import('../send/learn.js');
    const bar = process.stderr.isTTY ? progressBar((text) => process.stderr.write(text)) : { progress: () => undefined, end: () => undefined };
    const t0 = Date.now();
    let c: LearnCounts;
    try {
      c = await asOnlyLearner(hp.dir, () => bootstrap(store, config.classifier, sources, Date.now(), (done, total) => bar.progress(done, total)));
    } finally {
      bar.end();
    }
    console.log(summary('bootstrap', c, Date.now() - t0));
  }
  console.log(await learnQueue(store, config, hp, Date.now()));
}
