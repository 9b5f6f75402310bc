// Maildir delivery, in the order that makes it crash-safe: write tmp/UNIQUE, fsync it, link it into
// new/NAME, remove tmp/UNIQUE, fsync new/. A crash leaves the message whole in new/ or not there.

import { closeSync, constants, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { failpoint } from '../failure/failpoint.js';
import { syncDir } from './durable.js';

// Blocking calls throughout: a delivery process has nothing else to do while it writes, and each
// promise call is a thread-pool round trip (a dozen of them cost more than the writes themselves).
// The functions stay async so that callers need not care.

let counter = 0;
/** Set in each writer thread of `vouch serve` (setSeries): the counter is per thread, so the names
 * two threads of one process make must differ by more than it. */
let series = '';

/** Names made in this thread carry `T<id>` (a writer thread of `vouch serve` calls it once). */
export function setSeries(id: number): void {
  series = `T${id}`;
}

/** What tells this thread's names from another's in the same process (see setSeries). */
export function seriesOf(): string {
  return series;
}

/** The host part of a unique name, with "/" and ":" escaped as the maildir convention asks. */
function hostPart(host: string): string {
  return host.replace(/\//g, '\\057').replace(/:/g, '\\072');
}

/** A maildir unique name: `time.MusecPpidQn.host`. */
export function uniqueName(now: number = Date.now(), host: string = hostname()): string {
  const sec = Math.floor(now / 1000);
  const usec = (now % 1000) * 1000 + Math.floor(Math.random() * 1000);
  counter += 1;
  return `${sec}.M${usec}P${process.pid}${series}Q${counter}.${hostPart(host)}`;
}

function ensureMaildirSync(dir: string): void {
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
}

/** Creates dir/{cur,new,tmp} when missing (mode 0700). */
export async function ensureMaildir(dir: string): Promise<void> {
  ensureMaildirSync(dir);
}

/** True when `path` can be seen (a folder we cannot read counts as not there, as before). */
function exists(path: string): boolean {
  try {
    return statSync(path, { throwIfNoEntry: false }) !== undefined;
  } catch {
    return false;
  }
}

/** True when a message with this unique name is already in new/ or cur/ (with or without flags). */
export async function hasMessage(dir: string, name: string): Promise<boolean> {
  return findMessage(dir, name) !== undefined;
}

/** Where the message with this unique name is, in new/ or cur/ (with or without flags). */
export function findMessage(dir: string, name: string): string | undefined {
  for (const sub of ['new', 'cur']) {
    const path = join(dir, sub, name);
    if (exists(path)) return path;
  }
  try {
    const e = readdirSync(join(dir, 'cur')).find((f) => f.startsWith(`${name}:`) || f.startsWith(`${name}!`));
    return e === undefined ? undefined : join(dir, 'cur', e);
  } catch {
    return undefined;
  }
}

/** Writes `parts` (concatenated) as one message named `name` into the Maildir `dir`.
 * An existing new/NAME (a retry after a crash past the link) counts as delivered. */
export async function deliver(dir: string, name: string, parts: readonly Uint8Array[]): Promise<void> {
  deliverSync(dir, name, parts);
}

/** Writes `parts` (concatenated) as one message named `name` into the Maildir `dir`, durably. */
export type MaildirWriter = (dir: string, name: string, parts: readonly Uint8Array[]) => void | Promise<void>;

/** deliver(), for callers that are blocking anyway (a delivery process). */
export function deliverSync(dir: string, name: string, parts: readonly Uint8Array[]): void {
  // Every attempt writes a tmp file of its own (a fresh unique name), never tmp/NAME: a retry or a
  // second writer of the same message (an MTA duplicate, fsck finishing a release still in flight)
  // would otherwise truncate a file another process is writing, or one already linked into new/.
  // link() then admits exactly one of them; a failed write leaves nothing behind (a full disk).
  const tmp = join(dir, 'tmp', uniqueName());
  const dest = join(dir, 'new', name);
  // The folders are made when missing (a first delivery), not checked before every one.
  const fd = withMaildir(dir, () => openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600));
  try {
    try {
      for (const p of parts) {
        let off = 0;
        while (off < p.length) off += writeSync(fd, p, off, p.length - off);
      }
      failpoint('maildir:after-tmp-write');
      fsyncSync(fd);
      failpoint('maildir:after-fsync');
    } finally {
      closeSync(fd);
    }
  } catch (err) {
    removeQuietly(tmp);
    throw err;
  }
  try {
    withMaildir(dir, () => linkSync(tmp, dest));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      removeQuietly(tmp);
      throw err;
    }
    // new/NAME exists: this message, delivered by an earlier or concurrent attempt, when its bytes
    // are these. Anything else under the name (names come from fast keys too) is another message:
    // this one goes in under a name of its own rather than counting as delivered.
    if (!sameFile(dest, parts)) linkSync(tmp, join(dir, 'new', uniqueName()));
  }
  failpoint('maildir:after-link');
  removeQuietly(tmp);
  syncDir(join(dir, 'new'));
}

function sameFile(path: string, parts: readonly Uint8Array[]): boolean {
  try {
    return readFileSync(path).equals(Buffer.concat(parts));
  } catch {
    return false;
  }
}

/** Runs `fn`; when it fails for a missing folder, makes dir/{cur,new,tmp} and runs it again. */
function withMaildir<T>(dir: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    ensureMaildirSync(dir);
    return fn();
  }
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* already gone, or the folder went away: nothing to clean */
  }
}
