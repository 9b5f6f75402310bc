// `vouch fsck`: Maildir hygiene and store checks, safe to run from cron beside `vouch expire`.
// Removes tmp/ files older than 36 hours (the maildir convention) and tmp/ names a crash left behind
// after the message was already linked into new/; finishes releases a crash interrupted; runs
// PRAGMA integrity_check; rewrites lists.map from the store; sends the challenges whose delivery
// died before it could (claim.ts); makes the home's folders 0700 and its files 0600 again where
// they are wider. Never touches new/ or cur/.

import { chmod, lstat, readdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Config } from '../home/config.js';
import { homePaths, PRIVATE_DIR, PRIVATE_FILE, readSecret } from '../home/home.js';
import { finishInterrupted } from '../release/release.js';
import { claimLease, claimNote, processAlive, type Store } from '../store/store.js';

/** A tmp/ file untouched this long belongs to a delivery that died (the maildir convention). */
export const STALE_TMP_MS = 36 * 3_600_000;

export interface FsckReport {
  readonly ok: boolean;
  readonly tmpRemoved: number;
  readonly finished: number;
  readonly integrity: readonly string[];
  /** The store's files and their sizes. */
  readonly files: readonly { name: string; bytes: number }[];
  /** lists.map was rewritten. */
  readonly mapped: boolean;
  /** Paths in the home (relative) whose mode was wider than 0700/0600, made private now. */
  readonly widened: readonly string[];
  /** Challenges abandoned by a delivery that died, sent now (or failed: counted apart). */
  readonly challengesSent: number;
  readonly challengesFailed: number;
  readonly summary: string;
}

/** The Maildir and its Maildir++ subfolders (`.Junk` and friends) that have a tmp/. */
async function maildirs(root: string): Promise<string[]> {
  const out = [root];
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch {
    return [];
  }
  for (const e of entries) {
    if (!e.startsWith('.') || e === '.' || e === '..') continue;
    const st = await stat(join(root, e, 'tmp')).catch(() => undefined);
    if (st?.isDirectory()) out.push(join(root, e));
  }
  return out;
}

/** Removes stale and already-delivered files from tmp/ of every folder; returns how many. */
export async function cleanTmp(root: string, now: number): Promise<number> {
  let removed = 0;
  for (const dir of await maildirs(root)) {
    const tmp = join(dir, 'tmp');
    for (const name of await readdir(tmp).catch(() => [] as string[])) {
      const path = join(tmp, name);
      const st = await lstat(path).catch(() => undefined);
      if (!st?.isFile()) continue;
      const stale = Math.max(st.mtimeMs, st.atimeMs) < now - STALE_TMP_MS;
      // A second link means a crash came between link() into new/ and the unlink of tmp/: the
      // message is delivered, and this name is only a leftover.
      if (stale || st.nlink > 1) {
        await unlink(path).catch(() => undefined);
        removed += 1;
      }
    }
  }
  return removed;
}

function fmtBytes(n: number): string {
  return n < 1024 ? `${n}B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)}K` : `${(n / 1024 ** 2).toFixed(1)}M`;
}

/** Makes the home 0700 and everything in it 0700 (folders) or 0600 (files) where it is wider;
 * returns the paths (relative to the home) it changed. Symbolic links are not followed. */
export async function privateModes(home: string): Promise<string[]> {
  const changed: string[] = [];
  const visit = async (path: string, rel: string, depth: number): Promise<void> => {
    const st = await lstat(path).catch(() => undefined);
    if (st === undefined || st.isSymbolicLink()) return;
    const want = st.isDirectory() ? PRIVATE_DIR : PRIVATE_FILE;
    if ((st.mode & 0o777 & ~want) !== 0) {
      await chmod(path, want);
      changed.push(`${rel} ${(st.mode & 0o777).toString(8)}`);
    }
    // The home's own folders are a few levels deep (delivered/<day>/<key>); a user's deeper tree
    // is still walked, to a bound.
    if (st.isDirectory() && depth < 8) {
      for (const name of await readdir(path).catch(() => [] as string[])) await visit(join(path, name), rel === '.' ? name : `${rel}/${name}`, depth + 1);
    }
  };
  await visit(home, '.', 0);
  return changed;
}

export async function fsck(store: Store, config: Config, now: number): Promise<FsckReport> {
  const widened = await privateModes(store.home);
  const tmpRemoved = await cleanTmp(config.delivery.maildir, now);
  const finished = await finishInterrupted(store, config, now);
  const challenges = await resumeChallenges(store, config, now);
  const integrity = await store.integrityCheck();
  const ok = integrity.length === 1 && integrity[0] === 'ok';
  const files = store.files();
  // The lists map is rewritten from the store (unless a list change is under way, which rewrites it
  // itself): whatever a crash left, deliveries read the lists as the store has them.
  const mapped = ok ? await store.repairListMap() : false;
  const summary = [
    `maildir: ${tmpRemoved} stale tmp file(s) removed`,
    `releases: ${finished} interrupted release(s) finished`,
    `challenges: ${challenges.sent} abandoned challenge(s) sent${challenges.failed > 0 ? `, ${challenges.failed} failed` : ''}`,
    `store: ${ok ? 'ok' : `damaged: ${integrity.slice(0, 3).join('; ')}`} (${files.map((f) => `${f.name} ${fmtBytes(f.bytes)}`).join(', ')})`,
    `lists map: ${mapped ? 'rewritten' : ok ? 'left to the list change under way' : 'left (store damaged)'}`,
    `permissions: ${widened.length === 0 ? 'private' : `${widened.length} made private (${widened.slice(0, 5).join(', ')}${widened.length > 5 ? ', …' : ''})`}`,
  ].join('; ');
  return { ok, tmpRemoved, finished, integrity, mapped, summary, widened, files, challengesSent: challenges.sent, challengesFailed: challenges.failed };
}

/** Sends the challenges of held mail whose delivery claimed them and died before sending (or that
 * nobody claimed): each is claimed again first, so a retry running meanwhile and this cannot both
 * send it. The slot was counted against the rate limits when the message was held. */
export async function resumeChallenges(store: Store, config: Config, now: number): Promise<{ sent: number; failed: number }> {
  const host = hostname();
  const view = { now, leaseMs: claimLease(config.delivery.deadline), host, alive: processAlive };
  let sent = 0;
  let failed = 0;
  for (const held of await store.abandonedChallenges(view)) {
    if (!(await store.claimChallenge(held, claimNote({ at: now, pid: process.pid, host })))) continue;
    const { sendClaimed } = await import('../challenge/challenge.js');
    const r = await sendClaimed(store, { config, secret: () => readSecret(homePaths(store.home)), held, now });
    if (r.ok) sent += 1;
    else failed += 1;
  }
  return { sent, failed };
}
