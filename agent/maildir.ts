// Maildir delivery, in the order that makes it crash-safe: write tmp/UNIQUE, fsync it, link it into
// new/NAME, remove tmp/UNIQUE, fsync new/. A crash leaves the message whole in new/ or not there.

import { constants } from 'node:fs';
import { link, mkdir, open, readdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { failpoint } from './failpoint.js';

let counter = 0;

/** The host part of a unique name, with "/" and ":" escaped as the maildir convention asks. */
function hostPart(host: string): string {
  return host.replace(/\//g, '\\057').replace(/:/g, '\\072');
}

/** A maildir unique name: `time.MusecPpidQn.host`. */
export function uniqueName(now: number = Date.now(), host: string = hostname()): string {
  const sec = Math.floor(now / 1000);
  const usec = (now % 1000) * 1000 + Math.floor(Math.random() * 1000);
  counter += 1;
  return `${sec}.M${usec}P${process.pid}Q${counter}.${hostPart(host)}`;
}

/** Creates dir/{cur,new,tmp} when missing (mode 0700). */
export async function ensureMaildir(dir: string): Promise<void> {
  for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
}

/** True when a message with this unique name is already in new/ or cur/ (with or without flags). */
export async function hasMessage(dir: string, name: string): Promise<boolean> {
  try {
    await stat(join(dir, 'new', name));
    return true;
  } catch {
    /* not in new/ */
  }
  try {
    await stat(join(dir, 'cur', name));
    return true;
  } catch {
    /* nor in cur/ without flags */
  }
  try {
    const entries = await readdir(join(dir, 'cur'));
    return entries.some((e) => e.startsWith(`${name}:`) || e.startsWith(`${name}!`));
  } catch {
    return false;
  }
}

/** Writes `parts` (concatenated) as one message named `name` into the Maildir `dir`.
 * An existing new/NAME (a retry after a crash past the link) counts as delivered. */
export async function deliver(dir: string, name: string, parts: readonly Uint8Array[]): Promise<void> {
  await ensureMaildir(dir);
  // Every attempt writes a tmp file of its own (a fresh unique name), never tmp/NAME: a retry or a
  // second writer of the same message (an MTA duplicate, fsck finishing a release still in flight)
  // would otherwise truncate a file another process is writing, or one already linked into new/.
  // link() then admits exactly one of them; a failed write leaves nothing behind (a full disk).
  const tmp = join(dir, 'tmp', uniqueName());
  const dest = join(dir, 'new', name);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    try {
      for (const p of parts) {
        let off = 0;
        while (off < p.length) off += (await fh.write(p, off, p.length - off)).bytesWritten;
      }
      failpoint('maildir:after-tmp-write');
      await fh.sync();
      failpoint('maildir:after-fsync');
    } finally {
      await fh.close();
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  try {
    await link(tmp, dest);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
  }
  failpoint('maildir:after-link');
  await unlink(tmp).catch(() => undefined);
  await syncDir(join(dir, 'new'));
}

async function syncDir(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
