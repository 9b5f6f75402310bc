// Making a folder's entries durable: fsync of the folder itself, after a link, rename or unlink in
// it. The Maildir writer and the lists map both end with one; a server's concurrent deliveries into
// one folder share one (syncDirShared).

import { close, closeSync, constants, fsync, fsyncSync, open, openSync } from 'node:fs';

export function syncDir(path: string): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Callers waiting for the next fsync of a folder, by path, while one is running. */
const waiting = new Map<string, ((err: Error | undefined) => void)[]>();

/** syncDir() without blocking, shared by concurrent callers (group commit): an fsync of a folder
 * makes durable every entry made in it before the fsync began, so a caller that arrives while one
 * is running waits for the next one, which then serves everyone who arrived meanwhile. Each caller
 * still gets an fsync that began after its own link: none is skipped, some are shared. */
export function syncDirShared(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | undefined) => (err ? reject(err) : resolve());
    const queue = waiting.get(path);
    if (queue !== undefined) {
      queue.push(done);
      return;
    }
    waiting.set(path, []);
    runSync(path, [done]);
  });
}

function runSync(path: string, batch: ((err: Error | undefined) => void)[]): void {
  const finish = (err: Error | null) => {
    for (const f of batch) f(err ?? undefined);
    const next = waiting.get(path) ?? [];
    if (next.length === 0) {
      waiting.delete(path);
      return;
    }
    waiting.set(path, []);
    runSync(path, next);
  };
  open(path, constants.O_RDONLY | constants.O_DIRECTORY, (err, fd) => {
    if (err) return finish(err);
    fsync(fd, (syncErr) => close(fd, () => finish(syncErr)));
  });
}
