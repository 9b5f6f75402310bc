// `vouch whitelist learn PATH…`: the recipients of the user's sent mail, read from Maildirs, mbox
// files, folders of message files or single messages. Only the header block of each message is
// read (at most HEADER_MAX bytes of it); an mbox is streamed, never held in memory whole.

import { createReadStream, openSync, readdirSync, readSync, closeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { readHeaders } from '../mail/header.js';
import type { Config } from '../home/config.js';
import { addressesIn, isOwn } from './send.js';

/** The most of a message's header block read. */
const HEADER_MAX = 256 * 1024;

export interface SentMail {
  /** Messages read. */
  messages: number;
  /** Each recipient's key and the number of messages it was among the recipients of. */
  readonly counts: Map<string, number>;
}

/** Where the reading is: bytes read of all the paths' bytes. */
export type Progress = (done: number, total: number) => void;

interface Source {
  readonly kind: 'file' | 'mbox';
  readonly path: string;
  readonly size: number;
}

/** The messages a path holds: a Maildir (its cur/ and new/), a folder of message files, an mbox
 * file (it starts with "From "), or one message. Throws with the path named when it is none. */
function sources(path: string): Source[] {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (st.isFile()) {
    const head = Buffer.alloc(5);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, head, 0, 5, 0);
    } finally {
      closeSync(fd);
    }
    return [{ kind: head.toString('latin1') === 'From ' ? 'mbox' : 'file', path, size: st.size }];
  }
  if (!st.isDirectory()) throw new Error(`${path} is neither a file nor a folder`);
  const names = readdirSync(path);
  const dirs = names.includes('cur') || names.includes('new') ? ['cur', 'new'].map((d) => join(path, d)) : [path];
  const out: Source[] = [];
  for (const dir of dirs) {
    let entries: string[];
    try {
      entries = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of entries.sort()) {
      if (name.startsWith('.')) continue;
      const file = join(dir, name);
      const s = statSync(file, { throwIfNoEntry: false });
      if (s?.isFile()) out.push({ kind: 'file', path: file, size: s.size });
    }
  }
  return out;
}

/** The header block of one message file: read in small pieces until the empty line (or HEADER_MAX),
 * so a message with a large attachment costs a read of its header, not of the attachment. */
function headOf(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(HEADER_MAX);
    let len = 0;
    while (len < HEADER_MAX) {
      const n = readSync(fd, buf, len, Math.min(16 * 1024, HEADER_MAX - len), null);
      if (n === 0) break;
      // Look for the empty line from just before the new piece (it may straddle the boundary).
      const from = Math.max(0, len - 3);
      len += n;
      const part = buf.subarray(from, len);
      if (part.indexOf('\n\n') >= 0 || part.indexOf('\n\r\n') >= 0) break;
    }
    return buf.subarray(0, len);
  } finally {
    closeSync(fd);
  }
}

/** Calls `each` with the header block of every message in an mbox (split at "From " lines that
 * follow an empty line or start the file), streaming it; `read` is told the bytes as they go. */
async function eachMboxHeader(path: string, each: (head: Buffer) => void, read: (n: number) => void): Promise<void> {
  let carry = Buffer.alloc(0);
  let prevBlank = true;
  let collecting = false;
  let head: Buffer[] = [];
  let headLen = 0;
  const finish = () => {
    if (collecting) each(Buffer.concat(head));
    collecting = false;
    head = [];
    headLen = 0;
  };
  const line = (l: Buffer) => {
    const blank = l.length === 1 || (l.length === 2 && l[0] === 0x0d);
    if (prevBlank && l.length >= 5 && l.toString('latin1', 0, 5) === 'From ') {
      finish();
      collecting = true;
    } else if (collecting) {
      if (blank || headLen + l.length > HEADER_MAX) finish();
      else {
        head.push(l);
        headLen += l.length;
      }
    }
    prevBlank = blank;
  };
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    const buf = carry.length > 0 ? Buffer.concat([carry, chunk as Buffer]) : (chunk as Buffer);
    let start = 0;
    for (let nl = buf.indexOf(0x0a, start); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      line(buf.subarray(start, nl + 1));
      start = nl + 1;
    }
    carry = Buffer.from(buf.subarray(start));
    // A line longer than a header may be is body: it is let go rather than kept whole.
    if (carry.length > HEADER_MAX) {
      prevBlank = false;
      if (collecting) finish();
      carry = Buffer.alloc(0);
    }
    read((chunk as Buffer).length);
  }
  if (carry.length > 0) line(Buffer.concat([carry, Buffer.from('\n')]));
  finish();
}

/** Reads the sent mail under `paths` and counts its recipients (To, Cc, Bcc), the user's own
 * addresses left out. */
export async function readSentMail(paths: readonly string[], config: Config, progress?: Progress): Promise<SentMail> {
  const all = paths.flatMap(sources);
  const total = all.reduce((n, s) => n + s.size, 0);
  const out: SentMail = { messages: 0, counts: new Map() };
  const take = (head: Buffer) => {
    const h = readHeaders(head, HEADER_MAX);
    out.messages += 1;
    const keys = new Set(addressesIn(['to', 'cc', 'bcc'].flatMap((n) => h.all(n))));
    for (const k of keys) if (!isOwn(k, config)) out.counts.set(k, (out.counts.get(k) ?? 0) + 1);
  };
  let done = 0;
  for (const s of all) {
    if (s.kind === 'file') {
      take(headOf(s.path));
      done += s.size;
      progress?.(done, total);
    } else {
      await eachMboxHeader(s.path, take, (n) => {
        done += n;
        progress?.(done, total);
      });
    }
  }
  return out;
}

/** A progress bar for a terminal: `[#######.............]  35%`, redrawn at most every 100 ms. */
export function progressBar(write: (text: string) => void, now: () => number = Date.now): { progress: Progress; end: () => void } {
  let last = -Infinity;
  let shown = false;
  const draw = (done: number, total: number) => {
    const f = total === 0 ? 1 : Math.min(1, done / total);
    const width = 30;
    const full = Math.round(f * width);
    write(`\r[${'#'.repeat(full)}${'.'.repeat(width - full)}] ${String(Math.floor(f * 100)).padStart(3)}%`);
    shown = true;
  };
  return {
    progress(done, total) {
      const t = now();
      if (t - last < 100 && done < total) return;
      last = t;
      draw(done, total);
    },
    end() {
      if (shown) write('\r\x1b[K');
    },
  };
}
