// Making a folder's entries durable: fsync of the folder itself, after a link, rename or unlink in
// it. The Maildir writer and the lists map both end with one. Concurrent fsyncs of one file system
// (a server's writer threads) are served by one commit of its journal where the file system
// batches them, as ext4 and XFS do: shared, none skipped.

import { closeSync, constants, fsyncSync, openSync } from 'node:fs';

export function syncDir(path: string): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
