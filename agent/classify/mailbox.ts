// The messages in what a user hands `vouch learn`: a Maildir (cur/ and new/), a folder of message
// files (.eml, MH), an mbox file, or one message file. Read in pieces: an mbox of gigabytes is
// never held in memory whole, only one message of it at a time.

import { closeSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';

export interface Found {
  /** Where it came from, for error messages: the file (and for an mbox, the message's number). */
  readonly source: string;
  readonly bytes: Buffer;
}

/** The files a path stands for, with their sizes (for a progress bar). */
export function filesIn(path: string): { file: string; size: number }[] {
  const st = statSync(path);
  if (st.isFile()) return [{ file: path, size: st.size }];
  if (!st.isDirectory()) throw new Error(`${path} is neither a file nor a folder`);
  const subs = ['cur', 'new'].filter((s) => isDir(join(path, s)));
  const dirs = subs.length > 0 ? subs.map((s) => join(path, s)) : [path];
  const out: { file: string; size: number }[] = [];
  for (const d of dirs) {
    for (const name of readdirSync(d).sort()) {
      if (name.startsWith('.')) continue;
      const file = join(d, name);
      const s = statSync(file, { throwIfNoEntry: false });
      if (s?.isFile()) out.push({ file, size: s.size });
    }
  }
  return out;
}

function isDir(p: string): boolean {
  return statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
}

const FROM_ = Buffer.from('From ');
const CHUNK = 1 << 20;

/** The messages of one file: an mbox (it starts with a `From ` line) message by message, any
 * other file as one message. `onBytes` is told how far into the file the reading has come. */
export function* messagesInFile(file: string, onBytes?: (n: number) => void): Generator<Found> {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(5);
    const n = readSync(fd, head, 0, 5, 0);
    if (n < 5 || !head.equals(FROM_)) {
      closeSync(fd);
      const bytes = readFileSync(file);
      onBytes?.(bytes.length);
      yield { source: file, bytes };
      return;
    }
    let pending = Buffer.alloc(0);
    let pos = 0;
    let count = 0;
    let eof = false;
    // Where the search for a separator goes on in `pending`: what was searched already is not
    // searched again after the next piece arrives (a separator is at most 7 bytes long).
    let scanned = 1;
    // A message starts after a line `From …` that follows an empty line (or the start).
    while (!eof || pending.length > 0) {
      let cut = -1;
      for (let from = scanned; ; ) {
        const i = pending.indexOf('\nFrom ', from);
        if (i < 0) break;
        if (pending[i - 1] === 0x0a || (pending[i - 1] === 0x0d && pending[i - 2] === 0x0a)) {
          cut = i + 1;
          break;
        }
        from = i + 1;
      }
      if (cut < 0 && !eof) {
        scanned = Math.max(1, pending.length - 8);
        const buf = Buffer.alloc(CHUNK);
        const got = readSync(fd, buf, 0, CHUNK, pos);
        pos += got;
        if (got === 0) eof = true;
        else pending = pending.length === 0 ? buf.subarray(0, got) : Buffer.concat([pending, buf.subarray(0, got)]);
        continue;
      }
      const whole = cut < 0 ? pending : pending.subarray(0, cut);
      pending = cut < 0 ? Buffer.alloc(0) : pending.subarray(cut);
      scanned = 1;
      count += 1;
      onBytes?.(pos - pending.length);
      const bytes = unquote(whole);
      if (bytes.length > 0) yield { source: `${file} #${count}`, bytes };
    }
  } finally {
    try {
      closeSync(fd);
    } catch {
      /* closed above */
    }
  }
}

/** One mbox message without its `From ` line and the empty line that separates it from the next,
 * with `>From ` lines unquoted one level. */
function unquote(raw: Buffer): Buffer {
  const nl = raw.indexOf(0x0a);
  let end = raw.length;
  if (raw[end - 1] === 0x0a && raw[end - 2] === 0x0a) end -= 1;
  else if (raw[end - 1] === 0x0a && raw[end - 2] === 0x0d && raw[end - 3] === 0x0a) end -= 2;
  const body = nl < 0 ? Buffer.alloc(0) : raw.subarray(nl + 1, Math.max(nl + 1, end));
  const text = body.toString('latin1').replace(/^>(>*From )/gm, '$1');
  return Buffer.from(text, 'latin1');
}
