// The white and black lists compiled into one constant hash file, lists.map in the vouch home, so
// that a delivery learns which list a sender is on from one open and a few reads, without loading
// SQLite. The store stays the only source of truth: every change to the lists rewrites this file
// inside its own transaction (Store), and marks it stale until it has committed.
//
// Format (all integers little-endian):
//   header  32 bytes: "vouch lists map\n" (16), u32 buckets (a power of 2), u32 entries,
//           u32 table offset (32), u32 file size
//   table   buckets × (u32 offset, u32 length): where each bucket's entries are
//   entries hash u32, list u8 (0 white, 1 black), u8 0, u16 key length, u16 pattern length,
//           key, pattern (UTF-8)
//
// Staleness: a writer creates lists.stale/<its own name> (after BEGIN IMMEDIATE, before it
// renames a new map into place) and removes it once it has committed. A reader opens the map first
// and then finds lists.stale/ empty, or does not use the map: whatever it opened was then written by
// a writer that has committed since, so the map agrees with the store.

import { closeSync, constants, fsyncSync, mkdirSync, openSync, readdirSync, readSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { syncDir } from '../maildir/durable.js';
import { processAlive } from './claim.js';

export type ListName = 'white' | 'black';

export interface ListRow {
  readonly key: string;
  readonly list: ListName;
  readonly pattern: string;
}

export interface ListHit {
  readonly list: ListName;
  readonly pattern: string;
}

/** What the map says: `usable: false` when there is none, it is marked stale or it is damaged
 * (the caller asks the store instead). */
export type MapAnswer = { readonly usable: false; readonly why: 'missing' | 'stale' | 'damaged' } | { readonly usable: true; readonly hit: ListHit | undefined };

const MAGIC = Buffer.from('vouch lists map\n', 'latin1');
const HEADER = 32;
/** Maps up to this size are read whole; larger ones bucket by bucket. */
const SMALL = 64 * 1024;

export const MAP_FILE = 'lists.map';
export const STALE_DIR = 'lists.stale';

/** FNV-1a over the key's UTF-8 bytes. */
export function keyHash(key: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ (key[i] ?? 0), 0x01000193);
  return h >>> 0;
}

/** The file's bytes for these rows. */
export function buildListMap(rows: readonly ListRow[]): Buffer {
  let buckets = 1;
  while (buckets * 2 < rows.length) buckets *= 2;
  const entries = rows.map((r) => {
    const key = Buffer.from(r.key, 'utf8');
    const pattern = Buffer.from(r.pattern, 'utf8');
    if (key.length > 0xffff || pattern.length > 0xffff) throw new Error('list entry too long for the map');
    const hash = keyHash(key);
    return { hash, bucket: hash & (buckets - 1), list: r.list === 'black' ? 1 : 0, key, pattern };
  });
  entries.sort((a, b) => a.bucket - b.bucket);
  const tableEnd = HEADER + buckets * 8;
  const size = entries.reduce((n, e) => n + 10 + e.key.length + e.pattern.length, tableEnd);
  const out = Buffer.alloc(size);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(buckets, 16);
  out.writeUInt32LE(entries.length, 20);
  out.writeUInt32LE(HEADER, 24);
  out.writeUInt32LE(size, 28);
  let at = tableEnd;
  let i = 0;
  for (let b = 0; b < buckets; b++) {
    const start = at;
    for (; i < entries.length && entries[i]?.bucket === b; i++) {
      const e = entries[i];
      if (e === undefined) break;
      out.writeUInt32LE(e.hash, at);
      out.writeUInt8(e.list, at + 4);
      out.writeUInt16LE(e.key.length, at + 6);
      out.writeUInt16LE(e.pattern.length, at + 8);
      e.key.copy(out, at + 10);
      e.pattern.copy(out, at + 10 + e.key.length);
      at += 10 + e.key.length + e.pattern.length;
    }
    out.writeUInt32LE(start, HEADER + b * 8);
    out.writeUInt32LE(at - start, HEADER + b * 8 + 4);
  }
  return out;
}

class Damaged extends Error {}

/** Reads `length` bytes at `offset`, from the whole file when it was read whole. */
type Reader = (offset: number, length: number) => Buffer;

/** Reads from `offset` into `b` until it is full or the file ends; how many bytes came. */
function readFully(fd: number, b: Buffer, offset: number): number {
  let n = 0;
  while (n < b.length) {
    const got = readSync(fd, b, n, b.length - n, offset + n);
    if (got === 0) break;
    n += got;
  }
  return n;
}

/** A reader for the map and its size: a small map is read whole in one go; a large one (its size
 * then taken from its header) a bucket at a time. No fstat: one call fewer per delivery. */
function readerFor(fd: number): { read: Reader; size: number } {
  const head = Buffer.allocUnsafe(SMALL + 1);
  const got = readFully(fd, head, 0);
  if (got <= SMALL) {
    const all = head.subarray(0, got);
    return {
      size: got,
      read: (offset, length) => {
        if (offset + length > got) throw new Damaged('read past the end');
        return all.subarray(offset, offset + length);
      },
    };
  }
  const size = head.readUInt32LE(28);
  return {
    size,
    read: (offset, length) => {
      if (offset + length > size) throw new Damaged('read past the end');
      if (offset + length <= got) return head.subarray(offset, offset + length);
      const b = Buffer.allocUnsafe(length);
      if (readFully(fd, b, offset) < length) throw new Damaged('short map');
      return b;
    },
  };
}

/** Looks the keys up (blacklist first, as the store does), reading only their buckets. */
function lookupIn(read: Reader, size: number, keys: readonly string[]): ListHit | undefined {
  const head = read(0, HEADER);
  if (!head.subarray(0, 16).equals(MAGIC) || head.readUInt32LE(28) !== size) throw new Damaged('not a lists map');
  const buckets = head.readUInt32LE(16);
  if (buckets === 0 || (buckets & (buckets - 1)) !== 0 || HEADER + buckets * 8 > size) throw new Damaged('bad bucket count');
  let white: ListHit | undefined;
  for (const k of keys) {
    const key = Buffer.from(k, 'utf8');
    const hash = keyHash(key);
    const slot = read(HEADER + (hash & (buckets - 1)) * 8, 8);
    const bucket = read(slot.readUInt32LE(0), slot.readUInt32LE(4));
    for (let at = 0; at + 10 <= bucket.length; ) {
      const klen = bucket.readUInt16LE(at + 6);
      const plen = bucket.readUInt16LE(at + 8);
      const end = at + 10 + klen + plen;
      if (end > bucket.length) throw new Damaged('entry past its bucket');
      if (bucket.readUInt32LE(at) === hash && klen === key.length && bucket.subarray(at + 10, at + 10 + klen).equals(key)) {
        const hit: ListHit = { list: bucket[at + 4] === 1 ? 'black' : 'white', pattern: bucket.toString('utf8', at + 10 + klen, end) };
        if (hit.list === 'black') return hit;
        white ??= hit;
      }
      at = end;
    }
  }
  return white;
}

/** Answers from the map in `home` for these lookup keys (address.lookupKeys). Never throws. */
export function readListMap(home: string, keys: readonly string[]): MapAnswer {
  let fd: number;
  try {
    fd = openSync(join(home, MAP_FILE), constants.O_RDONLY);
  } catch {
    return { usable: false, why: 'missing' };
  }
  try {
    // Opened first, checked second: see the head of this file.
    if (staleMarks(home).length > 0) return { usable: false, why: 'stale' };
    const { read, size } = readerFor(fd);
    if (size < HEADER) return { usable: false, why: 'damaged' };
    return { usable: true, hit: lookupIn(read, size, keys) };
  } catch {
    return { usable: false, why: 'damaged' };
  } finally {
    closeSync(fd);
  }
}

/** The names in lists.stale/ (none when the folder is missing). */
export function staleMarks(home: string): string[] {
  try {
    return readdirSync(join(home, STALE_DIR));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

let marks = 0;

/** Marks the map stale for as long as this writer has not committed; durable before it returns. */
export function markStale(home: string): string {
  const dir = join(home, STALE_DIR);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const name = `${process.pid}.${Date.now()}.${++marks}`;
  closeSync(openSync(join(dir, name), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600));
  syncDir(dir);
  return name;
}

/** True when a mark was made by a process that may still be running (a mark is named
 * `pid.time.n`): its writer may yet commit, so the map is not to be rewritten under it. */
export function writerAtWork(home: string): boolean {
  return staleMarks(home).some((mark) => {
    const pid = Number(mark.split('.')[0]);
    return pid === process.pid || processAlive(pid);
  });
}

/** Removes marks (once the writer that made them has committed, or is known to be gone). */
export function clearMarks(home: string, names: readonly string[]): void {
  for (const n of names) {
    try {
      unlinkSync(join(home, STALE_DIR, n));
    } catch {
      /* already removed */
    }
  }
}

/** Writes the map for `rows` and renames it into place, durably. */
export function writeListMap(home: string, rows: readonly ListRow[]): void {
  const bytes = buildListMap(rows);
  const tmp = join(home, `${MAP_FILE}.${process.pid}.tmp`);
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, join(home, MAP_FILE));
  syncDir(home);
}
