// Where every message ended: the Maildir (new/ and cur/), the pending store, or neither. Messages
// made by the harnesses carry `Message-ID: <SID@stress.vouch.test>`, which the store keeps as a
// column and the Maildir file keeps in its header, so both sides can be matched to what was sent.

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Store } from '../../agent/store/store.js';

export const DOMAIN = 'stress.vouch.test';

/** A plain message the harnesses can trace; the body is `bodyBytes` long, so kills can land mid-write. */
export function traced(sid: string, from: string, bodyBytes = 400): string {
  const line = `${sid} the quick brown fox jumps over the lazy dog 0123456789\n`;
  const body = line.repeat(Math.max(1, Math.ceil(bodyBytes / line.length)));
  return [
    `From: ${from}`,
    'To: alice@example.org',
    `Subject: stress ${sid}`,
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    `Message-ID: <${sid}@${DOMAIN}>`,
    '',
    body,
  ].join('\n');
}

/** What qmail-local would have written into the Maildir for this message. */
export function inMaildir(sender: string, message: string | Buffer, recipient = 'alice@example.org'): Buffer {
  return Buffer.concat([Buffer.from(`Return-Path: <${sender}>\nDelivered-To: ${recipient}\n`), Buffer.from(message)]);
}

export interface StoredRow {
  readonly id: string;
  readonly state: string;
  readonly body: Buffer | null;
  readonly maildirName: string | null;
}

export interface Inventory {
  /** Traced id → the bytes of each Maildir file that carries it. */
  readonly files: Map<string, Buffer[]>;
  /** Maildir files that carry no traced id. */
  readonly untraced: string[];
  /** Files left in tmp/. */
  readonly tmp: string[];
  /** Traced id → its rows in the store. */
  readonly rows: Map<string, StoredRow[]>;
  readonly integrity: string[];
  readonly confirmsUsed: Set<string>;
  readonly whitelist: Set<string>;
}

const SID = new RegExp(`^Message-ID: <([^@>\\s]+)@${DOMAIN.replace(/\./g, '\\.')}>`, 'mi');

function sidOf(bytes: Buffer): string | undefined {
  const head = bytes.subarray(0, Math.min(bytes.length, 8192)).toString('latin1');
  const end = head.search(/\r?\n\r?\n/);
  return SID.exec(end < 0 ? head : head.slice(0, end))?.[1];
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export async function inventory(db: string, maildir: string): Promise<Inventory> {
  const files = new Map<string, Buffer[]>();
  const untraced: string[] = [];
  for (const sub of ['new', 'cur']) {
    for (const name of list(join(maildir, sub))) {
      const bytes = readFileSync(join(maildir, sub, name));
      const sid = sidOf(bytes);
      if (sid === undefined) untraced.push(`${sub}/${name}`);
      else files.set(sid, [...(files.get(sid) ?? []), bytes]);
    }
  }
  const tmp = list(join(maildir, 'tmp'));
  const store = await Store.open(db);
  try {
    const raw = await store.db.all<{ id: string; state: string; message_id: string; maildir_name: string | null }>(
      'SELECT id, state, message_id, maildir_name FROM messages',
    );
    const rows = new Map<string, StoredRow[]>();
    for (const r of raw) {
      const sid = /^<([^@>\s]+)@/.exec(r.message_id)?.[1] ?? `?${r.id}`;
      // Bodies through the store itself: it keeps them in pieces and reassembles them.
      const body = (await store.raw(r.id)) ?? null;
      rows.set(sid, [...(rows.get(sid) ?? []), { id: r.id, state: r.state, body, maildirName: r.maildir_name }]);
    }
    const integrity = await store.integrityCheck();
    const confirmsUsed = new Set((await store.db.all<{ id: string }>('SELECT id FROM confirms')).map((r) => r.id));
    const whitelist = new Set((await store.listPatterns('white')).map((r) => r.pattern));
    return { files, untraced, tmp, rows, integrity, confirmsUsed, whitelist };
  } finally {
    await store.close();
  }
}

export type Expect =
  /** In the Maildir exactly once, byte for byte. */
  | { readonly where: 'maildir'; readonly bytes: Buffer }
  /** Held exactly once, byte for byte, and not in the Maildir. */
  | { readonly where: 'held'; readonly bytes: Buffer }
  /** Consumed (a confirm reply): neither in the Maildir nor held. */
  | { readonly where: 'gone' }
  /** A confirm reply whose process was killed after the confirmation was used: its retry finds the
   * address used and the sender whitelisted, and delivers it (once) like any later mail to it. */
  | { readonly where: 'gone-or-maildir'; readonly bytes: Buffer };

export interface Audit {
  readonly checked: number;
  readonly lost: string[];
  readonly duplicated: string[];
  readonly truncated: string[];
  readonly heldTwice: string[];
  readonly misplaced: string[];
}

/** Compares what was sent with where it ended. */
export function audit(inv: Inventory, expected: ReadonlyMap<string, Expect>): Audit {
  const a: Audit = { checked: 0, lost: [], duplicated: [], truncated: [], heldTwice: [], misplaced: [] };
  for (const [sid, e] of expected) {
    (a as { checked: number }).checked += 1;
    const files = inv.files.get(sid) ?? [];
    const live = (inv.rows.get(sid) ?? []).filter((r) => r.state === 'held' || r.state === 'releasing');
    if (live.length > 1) a.heldTwice.push(sid);
    if (e.where === 'maildir') {
      if (files.length === 0) a.lost.push(sid);
      if (files.length > 1) a.duplicated.push(sid);
      if (files.some((f) => !f.equals(e.bytes))) a.truncated.push(sid);
      if (live.length > 0) a.misplaced.push(`${sid}: delivered and still held`);
    } else if (e.where === 'held') {
      if (live.length === 0) a.lost.push(sid);
      if (live.some((r) => r.body === null || !r.body.equals(e.bytes))) a.truncated.push(sid);
      if (files.length > 0) a.misplaced.push(`${sid}: held and in the Maildir`);
    } else if (e.where === 'gone-or-maildir') {
      if (files.length > 1) a.duplicated.push(sid);
      if (files.some((f) => !f.equals(e.bytes))) a.truncated.push(sid);
      if (live.length > 0) a.misplaced.push(`${sid}: should have been consumed or delivered`);
    } else if (files.length > 0 || live.length > 0) {
      a.misplaced.push(`${sid}: should have been consumed`);
    }
  }
  for (const sid of inv.files.keys()) if (!expected.has(sid)) a.misplaced.push(`${sid}: in the Maildir but never sent`);
  return a;
}

export function clean(a: Audit): boolean {
  return a.lost.length + a.duplicated.length + a.truncated.length + a.heldTwice.length + a.misplaced.length === 0;
}
