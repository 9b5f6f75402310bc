// The delivery journal: makes a direct delivery (whitelisted, tagged, junk) idempotent across MTA
// retries without opening the store. One small file per delivery, delivered/<day>/<key>, holds the
// Maildir name chosen for it; a retry finds it and does not write the message a second time. The
// day folders also count the deliveries per day for the activity chart, and expire prunes them.

import { closeSync, constants, existsSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { failpoint } from '../failure/failpoint.js';
import { deliverSync, findMessage, seriesOf } from '../maildir/maildir.js';
import { syncDir } from '../maildir/durable.js';

export const JOURNAL_DIR = 'delivered';
/** How many days back a retry looks (qmail gives up after 7 days, Postfix after 5). */
const LOOKBACK_DAYS = 8;
const DAY = 86_400_000;

/** The UTC day of `ms`, as the folder name: 2026-11-23. By arithmetic (days to civil date), not
 * Date.toISOString, whose first call costs a delivery a quarter of a millisecond. */
export function dayOf(ms: number): string {
  const z = Math.floor(ms / DAY) + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return `${String(y).padStart(4, '0')}-${m < 10 ? '0' : ''}${m}-${d < 10 ? '0' : ''}${d}`;
}

/** A key for (sender, recipient, bytes): two 32-bit multiply-xor lanes, each taking every other
 * word of the bytes, and the size. Not cryptographic, and need not be: a key found again is only
 * believed after the bytes it stands for are compared with the message (deliverOnce, Store.hold).
 * Built for speed on a cold process, where this loop runs in V8's interpreter. */
export function deliveryKey(sender: string, recipient: string, message: Uint8Array): string {
  const head = Buffer.from(`${sender}\0${recipient}\0`, 'utf8');
  let a = 0x811c9dc5;
  let b = 0x9e3779b9;
  for (const p of [head, message]) {
    const words = p.length >>> 2;
    if ((p.byteOffset & 3) === 0) {
      const v = new Int32Array(p.buffer, p.byteOffset, words);
      let i = 0;
      for (; i + 1 < words; i += 2) {
        a = Math.imul(a ^ (v[i] ?? 0), 0x01000193);
        b = Math.imul(b ^ (v[i + 1] ?? 0), 0x85ebca6b);
      }
      if (i < words) a = Math.imul(a ^ (v[i] ?? 0), 0x01000193);
    } else {
      for (let i = 0; i < words; i++) {
        const x = (p[i * 4] ?? 0) | ((p[i * 4 + 1] ?? 0) << 8) | ((p[i * 4 + 2] ?? 0) << 16) | ((p[i * 4 + 3] ?? 0) << 24);
        if ((i & 1) === 0) a = Math.imul(a ^ x, 0x01000193);
        else b = Math.imul(b ^ x, 0x85ebca6b);
      }
    }
    for (let i = words * 4; i < p.length; i++) a = Math.imul(a ^ (p[i] ?? 0), 0x01000193);
    // Mixed between the parts and by the length: head and message cannot trade bytes.
    a = Math.imul(a ^ (a >>> 15) ^ p.length, 0x2c1b3c6d);
    b = Math.imul(b ^ (b >>> 13) ^ p.length, 0x297a2d39);
    a ^= b >>> 7;
    b ^= a >>> 11;
  }
  const hex = (x: number) => (x >>> 0).toString(16).padStart(8, '0');
  return `${message.length}-${hex(a)}${hex(b)}`;
}

export interface Claim {
  /** The Maildir name this delivery uses. */
  readonly name: string;
  /** True when no earlier attempt had claimed the key. */
  readonly fresh: boolean;
}

/** Finds the name an earlier attempt claimed for `key`, looking back a week. */
export function findClaim(home: string, key: string, now: number): string | undefined {
  for (let d = 0; d < LOOKBACK_DAYS; d++) {
    const path = join(home, JOURNAL_DIR, dayOf(now - d * DAY), key);
    let text: string;
    try {
      // existsSync first: a missing file (the usual case, eight times) costs no exception.
      if (!existsSync(path)) continue;
      text = readFileSync(path, 'latin1');
    } catch {
      continue;
    }
    const name = firstLine(text);
    // Empty: not a claim (claims are linked into place whole; an empty file can only be left by
    // hand or by a crash of a writer that wrote in place): claim anew.
    if (name !== '') return name;
  }
  return undefined;
}

let asides = 0;

/** Claims `key` for `name` before the message is written, or returns the claim an earlier (or a
 * concurrent) attempt made. The claim file is written aside and linked into place, so it appears
 * whole or not at all, and of two processes delivering the same message at once exactly one
 * claims it; the other writes under the same name, and the Maildir's link() keeps one file.
 * Not fsynced, on purpose: the claim only has to outlive the process (a kill, a crash, a deadline),
 * and the page cache does. After a power loss in the moment between the Maildir's fsync and the
 * exit, the MTA's retry may deliver the message a second time, as qmail-local's own Maildir
 * delivery would; the message itself is durable in new/ before vouch answers, and never lost. */
export function claim(home: string, key: string, name: string, now: number, note = ''): Claim {
  const earlier = findClaim(home, key, now);
  if (earlier !== undefined) return { name: earlier, fresh: false };
  const dir = join(home, JOURNAL_DIR, dayOf(now));
  const path = join(dir, key);
  // Unique to this attempt: two threads of a server may claim one key at once, and one must not
  // truncate the file the other has just linked into place.
  const tmp = join(dir, `${TMP}${key}.${process.pid}${seriesOf()}.${++asides}`);
  writeAside(dir, tmp, `${name}\n${note}`);
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      unlinkQuietly(tmp);
      throw err;
    }
    const theirs = firstLine(readFileSync(path, 'latin1'));
    if (theirs !== '') {
      unlinkQuietly(tmp);
      return { name: theirs, fresh: false };
    }
    // An empty claim (an older vouch died between creating and filling it): take it over.
    renameSync(tmp, path);
    return { name, fresh: true };
  }
  unlinkQuietly(tmp);
  failpoint('journal:after-claim');
  return { name, fresh: true };
}

/** A claim's Maildir name: its first line (a note, if any, follows on the next lines). */
function firstLine(text: string): string {
  const nl = text.indexOf('\n');
  return (nl < 0 ? text : text.slice(0, nl)).trim();
}

/** The notes of the claims made in the lookback window (what a delivery wrote after the Maildir
 * name; `vouch deliver` writes where a whitelisted message came from), one string per claim that
 * has one. Reads every claim of the window: for cron and the user's actions, not for a delivery. */
export function claimNotes(home: string, now: number): string[] {
  const out: string[] = [];
  const first = dayOf(now - (LOOKBACK_DAYS - 1) * DAY);
  for (const day of days(home)) {
    if (day < first) continue;
    const dir = join(home, JOURNAL_DIR, day);
    let files: string[];
    try {
      files = readdirSync(dir);
    } catch {
      continue;
    }
    for (const f of files) {
      if (f.startsWith(TMP)) continue;
      let text: string;
      try {
        text = readFileSync(join(dir, f), 'latin1');
      } catch {
        continue; // pruned meanwhile
      }
      const nl = text.indexOf('\n');
      const note = nl < 0 ? '' : text.slice(nl + 1).trim();
      if (note !== '') out.push(note);
    }
  }
  return out;
}

/** Names of claims being written (before their link); not claims, not counted. */
const TMP = 'tmp.';

function writeAside(dir: string, tmp: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  }
  try {
    const bytes = Buffer.from(text, 'latin1');
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
  } finally {
    closeSync(fd);
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone already */
  }
}

/** Deliveries per day from `sinceDay` on. */
export function countByDay(home: string, sinceDay: string): { day: string; n: number }[] {
  const out: { day: string; n: number }[] = [];
  for (const day of days(home)) {
    if (day < sinceDay) continue;
    try {
      out.push({ day, n: readdirSync(join(home, JOURNAL_DIR, day)).filter((f) => !f.startsWith(TMP)).length });
    } catch {
      /* removed meanwhile */
    }
  }
  return out.sort((x, y) => (x.day < y.day ? -1 : x.day > y.day ? 1 : 0));
}

/** The newest direct deliveries (`limit` at most, newest first): when each was claimed and the
 * Maildir name it got. For the review page's event log; reads the newest day folders only. */
export function recentDeliveries(home: string, limit: number): { at: number; name: string }[] {
  const out: { at: number; name: string }[] = [];
  for (const day of days(home).sort().reverse()) {
    const dir = join(home, JOURNAL_DIR, day);
    let names: string[];
    try {
      names = readdirSync(dir).filter((f) => !f.startsWith(TMP));
    } catch {
      continue;
    }
    const found: { at: number; path: string }[] = [];
    for (const f of names) {
      const st = statSync(join(dir, f), { throwIfNoEntry: false });
      if (st) found.push({ at: st.mtimeMs, path: join(dir, f) });
    }
    found.sort((a, b) => b.at - a.at);
    for (const f of found.slice(0, limit - out.length)) {
      let name = '';
      try {
        name = firstLine(readFileSync(f.path, 'latin1'));
      } catch {
        /* pruned meanwhile */
      }
      out.push({ at: Math.floor(f.at), name });
    }
    if (out.length >= limit) break;
  }
  return out;
}

/** Removes the day folders before `beforeDay` (their claims only kept retries idempotent). */
export function prune(home: string, beforeDay: string): number {
  let n = 0;
  for (const day of days(home)) {
    if (day >= beforeDay) continue;
    rmSync(join(home, JOURNAL_DIR, day), { recursive: true, force: true });
    n += 1;
  }
  return n;
}

function days(home: string): string[] {
  try {
    return readdirSync(join(home, JOURNAL_DIR)).filter((d) => /^\d{4}-\d{2}-\d{2}$/.test(d));
  } catch {
    return [];
  }
}

/** One direct delivery (whitelisted, tagged, junk) to write once (deliverOnce). Plain data: a
 * server's writer thread gets it as a message. */
export interface OnceJob {
  /** The vouch home, whose journal keeps the claim. */
  readonly home: string;
  /** The user's Maildir; `dir` is it or one of its folders. */
  readonly maildir: string;
  readonly dir: string;
  readonly key: string;
  /** The Maildir name this attempt would use (a retry uses the one claimed first). */
  readonly name: string;
  readonly now: number;
  /** Kept with the claim after the name (where a whitelisted message came from). */
  readonly note: string;
  /** The lines put before the message (Return-Path, Delivered-To), written as UTF-8. */
  readonly head: string;
  /** The message, as the file has it after `head`. */
  readonly message: Uint8Array;
}

/** How many keys a delivery tries when earlier claims turn out to name other messages. */
const COLLISIONS = 8;

/** Delivers into a Maildir once per message: the journal fixes the name before the write, so a
 * retry after a crash finds the name it had and the file already there. A journal key is only a
 * fast hash, so a file found under the claimed name counts only when its bytes are this message's;
 * otherwise the next key is tried (after eight, the message is written under a new name).
 * Blocking throughout: `vouch deliver` has nothing else to do, and `vouch serve` runs it in a
 * writer thread (agent/serve/writers.ts), one round trip a delivery instead of one a step. */
export function deliverOnce(j: OnceJob): void {
  const parts = [Buffer.from(j.head), j.message];
  let name = j.name;
  for (let i = 0; i < COLLISIONS; i++) {
    const c = claim(j.home, i === 0 ? j.key : `${j.key}.${i}`, name, j.now, j.note);
    if (c.fresh) break;
    const found = findMessage(j.dir, c.name);
    if (found === undefined) {
      name = c.name; // claimed, never written (or since removed by the user): write it now
      break;
    }
    if (sameBytes(found, parts)) {
      // Delivered already, maybe by an attempt still between its link and its folder's fsync (a
      // second copy of the message in another thread or process): durable before it counts.
      syncDir(dirname(found));
      return;
    }
  }
  if (j.dir !== j.maildir) markFolder(j.dir);
  deliverSync(j.dir, name, parts);
}

function sameBytes(path: string, parts: readonly Uint8Array[]): boolean {
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch {
    return false;
  }
  return file.equals(Buffer.concat(parts));
}

/** A Maildir++ folder is marked as one (maildirfolder), made when missing. */
function markFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'maildirfolder'), '', { flag: 'a', mode: 0o600 });
}
