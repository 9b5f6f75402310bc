// Making a folder's entries durable: fsync of the folder itself, after a link, rename or unlink in
// it. The Maildir writer and the lists map both end with one.

import { closeSync, constants, fsyncSync, openSync } from 'node:fs';

export function syncDir(path: string): void {
  const fd = openSync(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
