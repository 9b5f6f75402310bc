// The pending store: held messages (metadata apart from the raw bytes, so lists never read bodies),
// the whitelist and blacklist, per-day activity counts, and the journals that make delivery and
// release idempotent. SQLite in WAL mode, schema versioned with PRAGMA user_version.
// Bodies are stored in rows of at most BODY_CHUNK bytes: sqlite3 copies a bound buffer and SQLite
// copies it again, so a whole 25 MB message in one row would cost four times its size in memory.

import { existsSync, statSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { Db, finalize, stepRun, type Param } from './db.js';
import { failpoint } from '../failure/failpoint.js';
import { isId, newId } from './ids.js';
import { lookupKeys, type Pattern } from '../mail/address.js';
import { countByDay, dayOf, prune as pruneJournal } from './journal.js';
import { claimAbandoned, type ClaimView } from './claim.js';
import { canonicalIp, familyOf, isLocalIp, netOf, netsHolding } from '../mail/ip.js';
import { clearMarks, markStale, staleMarks, writerAtWork, writeListMap, type ListName, type ListRow } from './listmap.js';

export { dayOf };
export { claimLease, claimNote, processAlive, type ClaimView } from './claim.js';

export const SCHEMA_VERSION = 9;

/** The version SCHEMA itself creates; MIGRATIONS take it on to SCHEMA_VERSION. */
const SCHEMA_BASE = 3;

/** What a checkpoint that empties the WAL leaves of its file: without a limit the WAL keeps its
 * high-water size for good (35 MB after a burst whose checkpoints readers held off). */
export const JOURNAL_SIZE_LIMIT = 4 << 20;

/** The largest piece of a body in one row. */
export const BODY_CHUNK = 1 << 20;

const BODIES = `
CREATE TABLE bodies (
  id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
  seq INTEGER NOT NULL,
  bytes BLOB NOT NULL,
  PRIMARY KEY (id, seq)
);`;

// A direct delivery is counted by the statement that claims it (claimDelivery), not by a second
// statement: one write, one commit, one fsync.
const DELIVERED = `
CREATE TRIGGER deliveries_count AFTER INSERT ON deliveries BEGIN
  INSERT INTO events (day, kind, n) VALUES (date(NEW.at / 1000, 'unixepoch'), 'delivered', 1)
    ON CONFLICT (day, kind) DO UPDATE SET n = n + 1;
END;`;

// A held message is counted by the INSERT that holds it, a challenge by the UPDATE that marks it
// sent (both on the day the message was received): a round trip fewer each on the held path.
const COUNTED = `
CREATE TRIGGER messages_held AFTER INSERT ON messages BEGIN
  INSERT INTO events (day, kind, n) VALUES (date(NEW.received / 1000, 'unixepoch'), 'held', 1)
    ON CONFLICT (day, kind) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER messages_challenged AFTER UPDATE OF challenge ON messages
  WHEN NEW.challenge = 'sent' AND OLD.challenge <> 'sent' BEGIN
  INSERT INTO events (day, kind, n) VALUES (date(NEW.received / 1000, 'unixepoch'), 'challenged', 1)
    ON CONFLICT (day, kind) DO UPDATE SET n = n + 1;
END;`;

/** How many events the log keeps (the activity page shows them). */
export const LOG_KEEP = 500;

/** From each version to the next, run in the same transaction as the version bump. A new store is
 * made as SCHEMA (version 3) and then brought forward by the same steps as an old one, so each
 * later version is written once, as its step here. */
const MIGRATIONS: Readonly<Record<number, string>> = {
  // 1 → 2: bodies in pieces (id, seq), every existing body becoming piece 0; deliveries counted by
  // a trigger.
  1: `
ALTER TABLE bodies RENAME TO bodies_v1;
${BODIES}
INSERT INTO bodies (id, seq, bytes) SELECT id, 0, bytes FROM bodies_v1;
DROP TABLE bodies_v1;
${DELIVERED}`,
  // 2 → 3: held messages and sent challenges counted by triggers.
  2: COUNTED,
  // 3 → 4: what each check found about a held message (signals, JSON), and whether it was held as
  // forged or spam (suspect: a confirmation never releases it).
  3: `
ALTER TABLE messages ADD COLUMN signals TEXT NOT NULL DEFAULT '{}';
ALTER TABLE messages ADD COLUMN suspect INTEGER NOT NULL DEFAULT 0;`,
  // 4 → 5: the local aged blocklist of client networks ("ADDR/LEN"; listed_until NULL = added by
  // hand, until removed), and the networks whitelisted senders' mail came from (never listed).
  4: `
CREATE TABLE blocklist (
  net TEXT PRIMARY KEY,
  count INTEGER NOT NULL,
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  listed_until INTEGER,
  repeats INTEGER NOT NULL DEFAULT 0,
  why TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE good_clients (
  net TEXT PRIMARY KEY,
  seen INTEGER NOT NULL
) WITHOUT ROWID;`,
  // 5 → 6: the classifier's learning queue. One row a message (`held:<id>`, `white:<key>`, or
  // `sha256:<hex>` for a bootstrap): the verdict the user's decision gives it, what the word list
  // holds for it now (learned), and the bytes to learn from while it may still be needed.
  5: `
CREATE TABLE learning (
  key TEXT PRIMARY KEY,
  verdict TEXT NOT NULL CHECK (verdict IN ('ham', 'spam')),
  learned TEXT CHECK (learned IN ('ham', 'spam')),
  queued INTEGER NOT NULL,
  done INTEGER,
  bytes BLOB
);
CREATE INDEX learning_due ON learning(queued) WHERE learned IS NULL OR learned <> verdict;`,
  // 6 → 7: the Message-IDs of the user's own mail (`vouch send`) and of vouch's digests, with the
  // time each was recorded (replies are recognised by them until they expire); and the time each
  // held message went out in a digest (NULL: not yet).
  6: `
CREATE TABLE outgoing (
  message_id TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('sent', 'digest')),
  at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX outgoing_at ON outgoing(at);
ALTER TABLE messages ADD COLUMN digested INTEGER;`,
  // 7 → 8: the review page as a triage tool. Each list entry says why it is there (source: how it
  // came, note: from what); the actions the user can undo (what each one did, as JSON); the last
  // LOG_KEEP events, written by triggers so no delivery path changes; the sender view's index, and
  // the held mail counted by reason and by sender (kept by triggers: the page's filters and its
  // sender view read a few rows instead of grouping 100,000), and a trigram index of every stored
  // message's sender, From and Subject (held or settled: a row leaves it only when pruned, because
  // taking rows out of it one by one made deleting 10,000 three times slower), so a search does
  // not read every row.
  // Deleted mail keeps its body for pending.trash (the trash); the trash index finds it.
  7: `
ALTER TABLE lists ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE lists ADD COLUMN note TEXT NOT NULL DEFAULT '';
CREATE TABLE actions (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  summary TEXT NOT NULL,
  undo TEXT NOT NULL,
  undone INTEGER
);
CREATE TABLE log (
  id INTEGER PRIMARY KEY,
  at INTEGER NOT NULL,
  kind TEXT NOT NULL,
  ref TEXT NOT NULL DEFAULT '',
  sender TEXT NOT NULL DEFAULT '',
  detail TEXT NOT NULL DEFAULT ''
);
CREATE TRIGGER log_keep AFTER INSERT ON log BEGIN
  DELETE FROM log WHERE id <= NEW.id - ${LOG_KEEP};
END;
CREATE TRIGGER log_held AFTER INSERT ON messages BEGIN
  INSERT INTO log (at, kind, ref, sender, detail) VALUES (NEW.received, 'held', NEW.id, NEW.sender, NEW.reason);
  INSERT INTO log (at, kind, ref, sender, detail) SELECT NEW.received, 'challenge suppressed', NEW.id, NEW.sender, NEW.challenge_note
    WHERE NEW.challenge IN ('suppressed', 'none');
END;
CREATE TRIGGER log_challenge AFTER UPDATE OF challenge ON messages
  WHEN NEW.challenge <> OLD.challenge AND NEW.challenge IN ('sent', 'failed') BEGIN
  INSERT INTO log (at, kind, ref, sender, detail)
    VALUES (NEW.received, CASE NEW.challenge WHEN 'sent' THEN 'challenge sent' ELSE 'challenge failed' END, NEW.id, NEW.sender, NEW.challenge_note);
END;
CREATE TRIGGER log_settled AFTER UPDATE OF state ON messages
  WHEN NEW.state <> OLD.state AND NEW.state IN ('released', 'deleted', 'expired', 'held') BEGIN
  INSERT INTO log (at, kind, ref, sender, detail)
    VALUES (coalesce(NEW.settled, NEW.received),
      CASE NEW.state WHEN 'held' THEN 'restored' ELSE NEW.state END, NEW.id, NEW.sender, NEW.subject);
END;
CREATE TRIGGER messages_suppressed AFTER INSERT ON messages WHEN NEW.challenge IN ('suppressed', 'none') BEGIN
  INSERT INTO events (day, kind, n) VALUES (date(NEW.received / 1000, 'unixepoch'), 'suppressed', 1)
    ON CONFLICT (day, kind) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER confirms_count AFTER INSERT ON confirms BEGIN
  INSERT INTO events (day, kind, n) VALUES (date(NEW.used / 1000, 'unixepoch'), 'confirmed', 1)
    ON CONFLICT (day, kind) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER log_confirmed AFTER INSERT ON confirms BEGIN
  INSERT INTO log (at, kind, ref, sender, detail) SELECT NEW.used, 'confirmed', NEW.id, m.sender, m.subject FROM messages m WHERE m.id = NEW.id;
END;
CREATE TRIGGER log_delivered AFTER INSERT ON deliveries BEGIN
  INSERT INTO log (at, kind, ref, detail) VALUES (NEW.at, 'delivered', '', NEW.name);
END;
CREATE TRIGGER log_dropped_new AFTER INSERT ON events WHEN NEW.kind = 'dropped' BEGIN
  INSERT INTO log (at, kind, detail) VALUES (CAST(unixepoch('subsec') * 1000 AS INTEGER), 'dropped', '');
END;
CREATE TRIGGER log_dropped AFTER UPDATE OF n ON events WHEN NEW.kind = 'dropped' BEGIN
  INSERT INTO log (at, kind, detail) VALUES (CAST(unixepoch('subsec') * 1000 AS INTEGER), 'dropped', '');
END;
CREATE INDEX messages_held_sender ON messages(sender_key, received) WHERE state IN ('held', 'releasing');
CREATE TABLE held_why (
  reason TEXT NOT NULL,
  challenge TEXT NOT NULL,
  note TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (reason, challenge, note)
) WITHOUT ROWID;
CREATE TABLE held_senders (
  sender_key TEXT PRIMARY KEY,
  n INTEGER NOT NULL,
  last INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX held_senders_last ON held_senders(last, sender_key);
INSERT INTO held_why (reason, challenge, note, n)
  SELECT reason, challenge, challenge_note, count(*) FROM messages WHERE state IN ('held', 'releasing') GROUP BY reason, challenge, challenge_note;
INSERT INTO held_senders (sender_key, n, last)
  SELECT sender_key, count(*), max(received) FROM messages WHERE state IN ('held', 'releasing') GROUP BY sender_key;
CREATE VIRTUAL TABLE held_text USING fts5(sender, from_header, subject, content='messages', content_rowid='rowid', tokenize='trigram');
INSERT INTO held_text (rowid, sender, from_header, subject) SELECT rowid, sender, from_header, subject FROM messages;
CREATE TRIGGER held_text_in AFTER INSERT ON messages BEGIN
  INSERT INTO held_text (rowid, sender, from_header, subject) VALUES (NEW.rowid, NEW.sender, NEW.from_header, NEW.subject);
END;
CREATE TRIGGER held_text_out AFTER DELETE ON messages BEGIN
  INSERT INTO held_text (held_text, rowid, sender, from_header, subject) VALUES ('delete', OLD.rowid, OLD.sender, OLD.from_header, OLD.subject);
END;
CREATE TRIGGER held_in AFTER INSERT ON messages WHEN NEW.state IN ('held', 'releasing') BEGIN
  INSERT INTO held_why (reason, challenge, note, n) VALUES (NEW.reason, NEW.challenge, NEW.challenge_note, 1)
    ON CONFLICT (reason, challenge, note) DO UPDATE SET n = n + 1;
  INSERT INTO held_senders (sender_key, n, last) VALUES (NEW.sender_key, 1, NEW.received)
    ON CONFLICT (sender_key) DO UPDATE SET n = n + 1, last = max(last, excluded.last);
END;
CREATE TRIGGER held_change AFTER UPDATE OF state, reason, challenge, challenge_note ON messages
  WHEN OLD.state IN ('held', 'releasing') OR NEW.state IN ('held', 'releasing') BEGIN
  UPDATE held_why SET n = n - 1
    WHERE OLD.state IN ('held', 'releasing') AND reason = OLD.reason AND challenge = OLD.challenge AND note = OLD.challenge_note;
  INSERT INTO held_why (reason, challenge, note, n) SELECT NEW.reason, NEW.challenge, NEW.challenge_note, 1 WHERE NEW.state IN ('held', 'releasing')
    ON CONFLICT (reason, challenge, note) DO UPDATE SET n = n + 1;
  DELETE FROM held_why WHERE n <= 0;
  UPDATE held_senders SET n = n - 1,
      last = coalesce((SELECT max(received) FROM messages INDEXED BY messages_held_sender WHERE sender_key = OLD.sender_key AND state IN ('held', 'releasing')), last)
    WHERE sender_key = OLD.sender_key AND OLD.state IN ('held', 'releasing') AND NEW.state NOT IN ('held', 'releasing');
  INSERT INTO held_senders (sender_key, n, last) SELECT NEW.sender_key, 1, NEW.received
    WHERE NEW.state IN ('held', 'releasing') AND OLD.state NOT IN ('held', 'releasing')
    ON CONFLICT (sender_key) DO UPDATE SET n = n + 1, last = max(last, excluded.last);
  DELETE FROM held_senders WHERE sender_key = OLD.sender_key AND n <= 0;
END;
CREATE TRIGGER held_out AFTER DELETE ON messages WHEN OLD.state IN ('held', 'releasing') BEGIN
  UPDATE held_why SET n = n - 1 WHERE reason = OLD.reason AND challenge = OLD.challenge AND note = OLD.challenge_note;
  DELETE FROM held_why WHERE n <= 0;
  UPDATE held_senders SET n = n - 1,
      last = coalesce((SELECT max(received) FROM messages INDEXED BY messages_held_sender WHERE sender_key = OLD.sender_key AND state IN ('held', 'releasing')), last)
    WHERE sender_key = OLD.sender_key;
  DELETE FROM held_senders WHERE sender_key = OLD.sender_key AND n <= 0;
END;
CREATE INDEX messages_held_why ON messages(reason, challenge, challenge_note, sender_key, received) WHERE state IN ('held', 'releasing');
CREATE INDEX messages_trash ON messages(settled) WHERE state = 'deleted';`,
  // 8 → 9: less written by each hold (bench P2). The search index takes new messages when a search
  // needs them (indexText: every row up to held_text_mark.upto is in it, none after), not in the
  // hold's transaction: a trigram index of three fields was a few pages and a segment merge now and
  // then on every held message. A row leaves the index when it goes, if it was in it; the mark comes
  // down with the highest row, so a row that reuses a freed rowid is never taken for indexed. The
  // event log is cut back to LOG_KEEP every 64th event instead of at each one (readers take the
  // newest LOG_KEEP).
  8: `
DROP TRIGGER IF EXISTS held_text_in;
DROP TRIGGER IF EXISTS held_text_out;
CREATE TABLE held_text_mark (upto INTEGER NOT NULL);
INSERT INTO held_text_mark (upto) SELECT coalesce(max(rowid), 0) FROM messages;
CREATE TRIGGER held_text_out AFTER DELETE ON messages BEGIN
  INSERT INTO held_text (held_text, rowid, sender, from_header, subject)
    SELECT 'delete', OLD.rowid, OLD.sender, OLD.from_header, OLD.subject WHERE OLD.rowid <= (SELECT upto FROM held_text_mark);
  UPDATE held_text_mark SET upto = (SELECT coalesce(max(rowid), 0) FROM messages) WHERE upto > (SELECT coalesce(max(rowid), 0) FROM messages);
END;
DROP TRIGGER IF EXISTS log_keep;
CREATE TRIGGER log_keep AFTER INSERT ON log WHEN NEW.id % 64 = 0 BEGIN
  DELETE FROM log WHERE id <= NEW.id - ${LOG_KEEP};
END;`,
};


const SCHEMA = `
CREATE TABLE messages (
  id TEXT PRIMARY KEY,
  digest TEXT NOT NULL UNIQUE,
  received INTEGER NOT NULL,
  sender TEXT NOT NULL,
  sender_key TEXT NOT NULL,
  recipient TEXT NOT NULL,
  from_header TEXT NOT NULL,
  subject TEXT NOT NULL,
  date_header TEXT NOT NULL,
  message_id TEXT NOT NULL,
  size INTEGER NOT NULL,
  reason TEXT NOT NULL,
  challenge TEXT NOT NULL,
  challenge_note TEXT NOT NULL DEFAULT '',
  state TEXT NOT NULL DEFAULT 'held',
  maildir_name TEXT,
  rpline TEXT NOT NULL,
  dtline TEXT NOT NULL,
  settled INTEGER
);
CREATE INDEX messages_state_received ON messages(state, received);
CREATE INDEX messages_sender_key ON messages(sender_key, state);
${BODIES}
CREATE TABLE lists (
  key TEXT NOT NULL,
  list TEXT NOT NULL CHECK (list IN ('white', 'black')),
  pattern TEXT NOT NULL,
  added INTEGER NOT NULL,
  PRIMARY KEY (key, list)
) WITHOUT ROWID;
CREATE INDEX lists_list_pattern ON lists(list, pattern);
CREATE TABLE deliveries (
  digest TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE events (
  day TEXT NOT NULL,
  kind TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (day, kind)
) WITHOUT ROWID;
${DELIVERED}
${COUNTED}
CREATE TABLE challenges (
  id INTEGER PRIMARY KEY,
  sender_key TEXT NOT NULL,
  domain TEXT NOT NULL,
  sent INTEGER NOT NULL
);
CREATE INDEX challenges_sender ON challenges(sender_key, sent);
CREATE INDEX challenges_domain ON challenges(domain, sent);
CREATE INDEX challenges_sent ON challenges(sent);
CREATE TABLE confirms (
  id TEXT PRIMARY KEY,
  used INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE keywords (
  word TEXT PRIMARY KEY,
  revoked INTEGER NOT NULL
) WITHOUT ROWID;
`;

export type { ListName };
/** 'pending': to be sent, nobody has claimed it; 'sending': claimed by the delivery named in the
 * note (claim.ts), which sends it; then 'sent' or 'failed'. */
export type ChallengeState = 'pending' | 'sending' | 'sent' | 'suppressed' | 'failed' | 'none';
/** Why vouch recorded a Message-ID: the user sent it (`vouch send`), or vouch sent it as a digest. */
export type OutgoingKind = 'sent' | 'digest';
export type MessageState = 'held' | 'releasing' | 'released' | 'deleted' | 'expired';

export interface HoldInput {
  readonly digest: string;
  readonly received: number;
  readonly sender: string;
  readonly senderKey: string;
  readonly recipient: string;
  readonly fromHeader: string;
  readonly subject: string;
  readonly date: string;
  readonly messageId: string;
  readonly reason: string;
  readonly challenge: ChallengeState;
  readonly challengeNote: string;
  readonly rpline: string;
  readonly dtline: string;
  readonly raw: Buffer;
  /** What each check found (authentication, blocklists, classifier, …), one key a check. */
  readonly signals?: Signals;
  /** Held as forged or spam: a confirmation never releases it, only the user does. */
  readonly suspect?: boolean;
}

/** The outcome of each check made on a held message, by check name; values are plain JSON. */
export type Signals = Readonly<Record<string, unknown>>;

export type LearnVerdict = 'ham' | 'spam';

/** A decision that teaches the classifier: queue the message (its first `maxBytes`) as `verdict`. */
export interface LearnAs {
  readonly verdict: LearnVerdict;
  readonly maxBytes: number;
}

/** A message waiting in the learning queue. */
export interface LearnItem {
  readonly key: string;
  readonly verdict: LearnVerdict;
  /** What the word list holds for it now (null: nothing). */
  readonly learned: LearnVerdict | null;
  readonly bytes: Buffer | null;
}

export interface RateLimits {
  readonly domain: string;
  /** One challenge per sender within this many ms. */
  readonly window: number;
  readonly perDomainHourly: number;
  readonly globalHourly: number;
}

/** A held message as the hold's first look sees it. */
interface Seen {
  readonly id: string;
  readonly state: MessageState;
  readonly challenge: ChallengeState;
  readonly challenge_note: string;
  readonly sender: string;
  readonly recipient: string;
}

export interface HoldResult {
  readonly id: string;
  /** False when the message was already held (an MTA retry). */
  readonly fresh: boolean;
  readonly challenge: ChallengeState;
  readonly note: string;
  /** The row as it was stored, when this call stored it (saves a get() on the challenge path). */
  readonly held?: Held;
  /** This call claimed the challenge (state 'sending', its note the claim): it must send it. */
  readonly owned: boolean;
}

/** How a hold claims the challenge it is to send: its note, and how to judge another's claim. */
export interface ChallengeClaim {
  readonly note: string;
  readonly view: ClaimView;
}

export interface Held {
  readonly id: string;
  readonly received: number;
  readonly sender: string;
  readonly senderKey: string;
  readonly recipient: string;
  readonly fromHeader: string;
  readonly subject: string;
  readonly date: string;
  readonly messageId: string;
  readonly size: number;
  readonly reason: string;
  readonly challenge: ChallengeState;
  readonly challengeNote: string;
  readonly state: MessageState;
  readonly maildirName: string | null;
  readonly rpline: string;
  readonly dtline: string;
  readonly signals: Signals;
  readonly suspect: boolean;
}

export interface ListQuery {
  readonly limit?: number;
  readonly offset?: number;
  /** Matches sender, From and Subject (case-insensitive substring). */
  readonly search?: string;
  readonly reason?: string;
  readonly challenge?: ChallengeState;
  /** Only these (reason, challenge, note) kinds: the review page's "why held" filters. */
  readonly why?: readonly WhyKey[];
  /** Only mail from this sender (by key). */
  readonly senderKey?: string;
}

/** One kind of reason a message is held for, as stored: the reason, the challenge state and its note. */
export interface WhyKey {
  readonly reason: string;
  readonly challenge: ChallengeState;
  readonly note: string;
}

/** Held mail of one sender, for the review page's sender view. */
export interface SenderGroup {
  readonly senderKey: string;
  readonly n: number;
  /** The newest held message of this sender (that matches the filter). */
  readonly newest: Held;
}

/** How a list entry came to be: confirmed by the sender, released or blocked by the user, a
 * recipient of `vouch send`, typed by hand, imported. */
export type ListSource = 'confirmation' | 'release' | 'block' | 'send' | 'hand' | 'import';

export interface ListOrigin {
  readonly source: ListSource;
  /** What it came from, e.g. the held message's id (shown beside the entry). */
  readonly note?: string;
}

/** A whitelist or blacklist entry with its provenance ('' source: added before schema 8). */
export interface ListEntry {
  readonly key: string;
  readonly list: ListName;
  readonly pattern: string;
  readonly added: number;
  readonly source: string;
  readonly note: string;
}

/** What adding patterns changed: the entries made, and the entries of the other list they took
 * the place of (an undo puts those back). */
export interface ListChange {
  readonly added: readonly ListEntry[];
  readonly displaced: readonly ListEntry[];
}

/** An action the user can undo, as recorded. */
export interface ActionRecord {
  readonly id: number;
  readonly at: number;
  readonly summary: string;
  readonly undo: unknown;
  readonly undone: number | null;
}

export interface LogEvent {
  readonly id: number;
  readonly at: number;
  readonly kind: string;
  readonly ref: string;
  readonly sender: string;
  readonly detail: string;
}

interface Row {
  id: string;
  received: number;
  sender: string;
  sender_key: string;
  recipient: string;
  from_header: string;
  subject: string;
  date_header: string;
  message_id: string;
  size: number;
  reason: string;
  challenge: ChallengeState;
  challenge_note: string;
  state: MessageState;
  maildir_name: string | null;
  rpline: string;
  dtline: string;
  signals: string;
  suspect: number;
}

const META = `id, received, sender, sender_key, recipient, from_header, subject, date_header, message_id, size,
  reason, challenge, challenge_note, state, maildir_name, rpline, dtline, signals, suspect`;

/** The stored signals, or none when the text is not a JSON object (never fails a read). */
function parseSignals(text: string): Signals {
  if (text === '{}' || text === '') return EMPTY_SIGNALS;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? Object.freeze(v as Record<string, unknown>) : EMPTY_SIGNALS;
  } catch {
    return EMPTY_SIGNALS;
  }
}

const EMPTY_SIGNALS: Signals = Object.freeze({});

function toHeld(r: Row): Held {
  return Object.freeze({
    id: r.id,
    received: r.received,
    sender: r.sender,
    senderKey: r.sender_key,
    recipient: r.recipient,
    fromHeader: r.from_header,
    subject: r.subject,
    date: r.date_header,
    messageId: r.message_id,
    size: r.size,
    reason: r.reason,
    challenge: r.challenge,
    challengeNote: r.challenge_note,
    state: r.state,
    maildirName: r.maildir_name,
    rpline: r.rpline,
    dtline: r.dtline,
    signals: parseSignals(r.signals),
    suspect: r.suspect === 1,
  });
}

export class StoreVersionError extends Error {}

/** The store is not there (or is an empty file): only `vouch init` makes one. */
export class StoreMissingError extends Error {
  constructor(text = 'the pending store is missing; run vouch init') {
    super(text);
    this.name = 'StoreMissingError';
  }
}

export class Store {
  readonly db: Db;
  /** The vouch home (the store's folder), where lists.map and the delivery journal live. */
  readonly home: string;
  /** The store's file. */
  readonly path: string;

  private constructor(db: Db, path: string) {
    this.db = db;
    this.home = dirname(path);
    this.path = path;
  }

  /** Opens the store. Throws StoreMissingError when there is none (no file, an empty file, a
   * schema never written) unless `create` is set, which only `vouch init` does: a store that has
   * gone must never silently come back empty (every list and held message gone). Throws on a
   * corrupt file or a newer schema. */
  static async open(path: string, opts: { readonly busyMs?: number; readonly create?: boolean } = {}): Promise<Store> {
    const busy = opts.busyMs === undefined ? {} : { busyMs: opts.busyMs };
    let db: Db;
    try {
      db = await Db.open(path, { ...busy, create: opts.create === true });
    } catch (err) {
      if (opts.create !== true && (err as { code?: string }).code === 'SQLITE_CANTOPEN' && !existsSync(path)) throw new StoreMissingError();
      throw err;
    }
    try {
      let version: number;
      if (opts.create === true) {
        // Both queued at once (exec runs alone, so the version is read after the PRAGMAs): one wait.
        const [, row] = await Promise.all([
          db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT};`),
          db.get<{ user_version: number }>('PRAGMA user_version'),
        ]);
        version = row?.user_version ?? 0;
      } else {
        // Looked at before anything is written: an empty file stays as it is.
        const row = await db.get<{ user_version: number }>('PRAGMA user_version');
        version = row?.user_version ?? 0;
        if (version === 0) throw new StoreMissingError('the pending store is empty; run vouch init');
        await db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA journal_size_limit = ${JOURNAL_SIZE_LIMIT};`);
      }
      const store = new Store(db, path);
      await store.#migrate(version);
      return store;
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
  }

  async #migrate(v: number): Promise<void> {
    if (v === SCHEMA_VERSION) return;
    if (v > SCHEMA_VERSION) throw new StoreVersionError(`the store was written by a newer vouch (schema ${v})`);
    await this.db.tx(async () => {
      // Another process may have created or upgraded the store meanwhile.
      let at = await this.#version();
      if (at === 0) {
        await this.db.exec(SCHEMA);
        at = SCHEMA_BASE;
      }
      for (; at < SCHEMA_VERSION; at++) {
        const step = MIGRATIONS[at];
        if (step === undefined) throw new StoreVersionError(`no migration from schema ${at}`);
        await this.db.exec(step);
      }
      await this.db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
    });
  }

  async #version(): Promise<number> {
    const row = await this.db.get<{ user_version: number }>('PRAGMA user_version');
    return row?.user_version ?? 0;
  }

  close(): Promise<void> {
    return this.db.close();
  }

  // ---- lists

  /** Which list (blacklist first) the sender is on, and the pattern that matched; given several
   * senders, the blacklist wins if any of them is on it. */
  async lookup(sender: string | readonly string[]): Promise<{ list: ListName; pattern: string } | undefined> {
    const keys = [...new Set((typeof sender === 'string' ? [sender] : sender).flatMap(lookupKeys))];
    if (keys.length === 0) return undefined;
    const rows = await this.db.all<{ list: ListName; pattern: string }>(
      `SELECT list, pattern FROM lists WHERE key IN (${keys.map(() => '?').join(',')})`,
      keys,
    );
    return rows.find((r) => r.list === 'black') ?? rows[0];
  }

  /** Adds patterns to a list (in one transaction); the same pattern leaves the other list. */
  async addPatterns(list: ListName, patterns: readonly Pattern[], now = Date.now(), origin: ListOrigin = { source: 'hand' }): Promise<number> {
    if (patterns.length === 0) return 0;
    return this.#listsTx(async () => {
      const del = await this.db.prepare('DELETE FROM lists WHERE key = ? AND list <> ?');
      const ins = await this.db.prepare('INSERT OR IGNORE INTO lists (key, list, pattern, added, source, note) VALUES (?, ?, ?, ?, ?, ?)');
      let added = 0;
      try {
        for (const p of patterns) {
          await stepRun(del, [p.key, list]);
          added += await stepRun(ins, [p.key, list, p.text, now, origin.source, origin.note ?? '']);
        }
      } finally {
        await finalize(del);
        await finalize(ins);
      }
      return added;
    });
  }

  /** addPatterns, saying exactly what changed (for an undo). */
  async changeList(list: ListName, patterns: readonly Pattern[], now: number, origin: ListOrigin): Promise<ListChange> {
    if (patterns.length === 0) return { added: [], displaced: [] };
    return this.#listsTx(async () => {
      const added: ListEntry[] = [];
      const displaced: ListEntry[] = [];
      const byKey = new Map(patterns.map((p) => [p.key, p]));
      const present = new Map<string, ListEntry[]>();
      for (const part of chunks([...byKey.keys()])) {
        const rows = await this.db.all<ListEntry>(`SELECT key, list, pattern, added, source, note FROM lists WHERE key IN (${part.map(() => '?').join(',')})`, part);
        for (const e of rows) present.set(e.key, [...(present.get(e.key) ?? []), e]);
      }
      const del = await this.db.prepare('DELETE FROM lists WHERE key = ? AND list = ?');
      const ins = await this.db.prepare('INSERT INTO lists (key, list, pattern, added, source, note) VALUES (?, ?, ?, ?, ?, ?)');
      try {
        for (const p of byKey.values()) {
          const old = present.get(p.key) ?? [];
          if (old.some((e) => e.list === list)) continue;
          for (const e of old) {
            await stepRun(del, [e.key, e.list]);
            displaced.push(e);
          }
          const e: ListEntry = { key: p.key, list, pattern: p.text, added: now, source: origin.source, note: origin.note ?? '' };
          await stepRun(ins, [e.key, e.list, e.pattern, e.added, e.source, e.note]);
          added.push(e);
        }
      } finally {
        await finalize(del);
        await finalize(ins);
      }
      return { added, displaced };
    });
  }

  /** Takes back a change made by changeList (or takeFromList): its entries leave, the ones it
   * displaced or removed return as they were. Says how many left and how many returned. */
  async revertList(change: ListChange): Promise<{ removed: number; returned: number }> {
    if (change.added.length === 0 && change.displaced.length === 0) return { removed: 0, returned: 0 };
    return this.#listsTx(async () => {
      let removed = 0;
      let returned = 0;
      const del = await this.db.prepare('DELETE FROM lists WHERE key = ? AND list = ? AND added = ?');
      const ins = await this.db.prepare('INSERT OR IGNORE INTO lists (key, list, pattern, added, source, note) VALUES (?, ?, ?, ?, ?, ?)');
      try {
        for (const e of change.added) removed += await stepRun(del, [e.key, e.list, e.added]);
        for (const e of change.displaced) returned += await stepRun(ins, [e.key, e.list, e.pattern, e.added, e.source, e.note]);
      } finally {
        await finalize(del);
        await finalize(ins);
      }
      return { removed, returned };
    });
  }

  /** removePatterns, returning the entries removed with their provenance (for an undo). */
  async takeFromList(list: ListName, patterns: readonly Pattern[]): Promise<ListEntry[]> {
    if (patterns.length === 0) return [];
    return this.#listsTx(async () => {
      const out: ListEntry[] = [];
      for (const part of chunks([...new Set(patterns.map((p) => p.key))])) {
        const marks = part.map(() => '?').join(',');
        out.push(...(await this.db.all<ListEntry>(`SELECT key, list, pattern, added, source, note FROM lists WHERE list = ? AND key IN (${marks})`, [list, ...part])));
        await this.db.run(`DELETE FROM lists WHERE list = ? AND key IN (${marks})`, [list, ...part]);
      }
      return out;
    });
  }

  /** A page of a list with each entry's provenance, optionally only patterns containing `search`. */
  async listEntries(list: ListName, opts: { readonly search?: string; readonly limit?: number; readonly offset?: number } = {}): Promise<ListEntry[]> {
    const like = opts.search ? likeOf(opts.search) : undefined;
    return this.db.all(
      `SELECT key, list, pattern, added, source, note FROM lists WHERE list = ?${like ? ` AND pattern LIKE ? ESCAPE '\\'` : ''} ORDER BY pattern LIMIT ? OFFSET ?`,
      [list, ...(like ? [like] : []), opts.limit ?? -1, opts.offset ?? 0],
    );
  }

  async countEntries(list: ListName, search?: string): Promise<number> {
    const like = search ? likeOf(search) : undefined;
    const row = await this.db.get<{ n: number }>(`SELECT count(*) AS n FROM lists WHERE list = ?${like ? ` AND pattern LIKE ? ESCAPE '\\'` : ''}`, [list, ...(like ? [like] : [])]);
    return row?.n ?? 0;
  }

  async removePatterns(list: ListName, patterns: readonly Pattern[]): Promise<number> {
    let removed = 0;
    await this.#listsTx(async () => {
      for (const p of patterns) removed += (await this.db.run('DELETE FROM lists WHERE key = ? AND list = ?', [p.key, list])).changes;
    });
    return removed;
  }

  /** A transaction that changes the lists, and rewrites lists.map to match before it commits: the
   * map is marked stale (durably) first and unmarked after the commit, so no delivery believes a
   * map that disagrees with the store (listmap.ts). Marks left by writers that have ended (they
   * were there when this one took the write lock) go too, since this map covers what they did. */
  async #listsTx<T>(body: () => Promise<T>): Promise<T> {
    let marks: string[] = [];
    const out = await this.db.tx(async () => {
      const settled = staleMarks(this.home);
      const mine = markStale(this.home);
      marks = [...settled, mine];
      const r = await body();
      writeListMap(this.home, await this.db.all<ListRow>('SELECT key, list, pattern FROM lists'));
      failpoint('lists:after-map');
      return r;
    });
    clearMarks(this.home, marks);
    return out;
  }

  /** Rewrites lists.map from the lists. */
  async refreshListMap(): Promise<void> {
    await this.#listsTx(async () => undefined);
  }

  /** Rewrites lists.map when it is missing or damaged, or marked stale only by writers that are
   * gone (a crash between their commit and their unmarking); not while a writer is at work. */
  async repairListMap(): Promise<boolean> {
    if (writerAtWork(this.home)) return false;
    await this.refreshListMap();
    return true;
  }

  async listPatterns(list: ListName, opts: { readonly limit?: number; readonly offset?: number } = {}): Promise<{ pattern: string; added: number }[]> {
    return this.db.all(
      'SELECT pattern, added FROM lists WHERE list = ? ORDER BY pattern LIMIT ? OFFSET ?',
      [list, opts.limit ?? -1, opts.offset ?? 0],
    );
  }

  async countPatterns(list: ListName): Promise<number> {
    return (await this.db.get<{ n: number }>('SELECT count(*) AS n FROM lists WHERE list = ?', [list]))?.n ?? 0;
  }

  // ---- held messages

  /** Holds a message, once: the same digest (an MTA retry) returns the id it already has. When the
   * message is to be challenged, the rate limits are checked and a challenge slot is taken in the
   * same transaction, so concurrent deliveries cannot both pass a limit. With `claim`, a challenge
   * to send is claimed in that transaction too (stored as 'sending', `owned` in the answer): by the
   * hold that stores the message, or by a retry that finds it held with a challenge nobody is
   * sending (claim.ts), so of many identical copies exactly one sends it. */
  // `whileCommitting` gets the result once it is decided, while the commit that makes it durable is
  // under way (a challenge is composed meanwhile; it goes out only after hold() returns).
  async hold(m: HoldInput, rate?: RateLimits, claim?: ChallengeClaim, whileCommitting?: (r: HoldResult) => void): Promise<HoldResult> {
    return this.db.tx(async () => {
      // The digest is a fast key (deliver.digestOf): a message found under it is this one only when
      // sender, recipient and bytes agree. Another one under the same key takes the next key.
      // The first look also counts the recent challenges for the rate limits: one round trip
      // fewer while the write lock is held.
      const first = await this.#seenAndLimits(m, rate);
      let digest = m.digest;
      for (let n = 1; ; n++) {
        const seen =
          n === 1
            ? first.seen
            : await this.db.get<Seen>('SELECT id, state, challenge, challenge_note, sender, recipient FROM messages WHERE digest = ?', [digest]);
        if (!seen) break;
        if (seen.sender === m.sender && seen.recipient === m.recipient) {
          // A body already gone (released, then pruned) cannot be compared: the retry of a message
          // that was held and settled is the likely story, so it counts as the same.
          const raw = await this.raw(seen.id);
          if (raw === undefined || raw.equals(m.raw)) return this.#retake(seen, claim);
        }
        if (n > 16) throw new Error('hold: too many messages share one digest');
        digest = `${m.digest}.${n}`;
      }
      let challenge = m.challenge;
      let note = m.challengeNote;
      if (challenge === 'pending' && rate) {
        const limited = first.limited;
        if (limited) {
          challenge = 'suppressed';
          note = limited;
        } else {
          await this.db.run('INSERT INTO challenges (sender_key, domain, sent) VALUES (?, ?, ?)', [m.senderKey, rate.domain, m.received]);
        }
      }
      // Counted against the caps above; claimed here, in the same INSERT.
      const owned = challenge === 'pending' && claim !== undefined;
      if (owned) {
        challenge = 'sending';
        note = claim.note;
      }
      // A new id until one is free: the digest was checked above under the write lock, so the only
      // conflict the INSERT can meet is on the id (and only the statement fails, not the transaction).
      // The trigger messages_held counts it.
      let id = await newId(m.received);
      for (let tries = 1; ; tries++) {
        try {
          await this.db.run(
            `INSERT INTO messages (id, digest, received, sender, sender_key, recipient, from_header, subject, date_header,
               message_id, size, reason, challenge, challenge_note, rpline, dtline, signals, suspect)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
            [id, digest, m.received, m.sender, m.senderKey, m.recipient, m.fromHeader, m.subject, m.date, m.messageId,
              m.raw.length, m.reason, challenge, note, m.rpline, m.dtline, JSON.stringify(m.signals ?? {}), m.suspect === true ? 1 : 0],
          );
          break;
        } catch (err) {
          if (tries >= 10 || (err as { code?: string }).code !== 'SQLITE_CONSTRAINT') throw err;
          id = await newId(m.received);
        }
      }
      await this.#putBody(id, m.raw);
      const held: Held = {
        id, received: m.received, sender: m.sender, senderKey: m.senderKey, recipient: m.recipient, fromHeader: m.fromHeader,
        subject: m.subject, date: m.date, messageId: m.messageId, size: m.raw.length, reason: m.reason, challenge,
        challengeNote: note, state: 'held', maildirName: null, rpline: m.rpline, dtline: m.dtline,
        signals: m.signals ?? EMPTY_SIGNALS, suspect: m.suspect === true,
      };
      return { id, fresh: true, challenge, note, held, owned };
    }, whileCommitting);
  }

  /** A retry found its message held: it takes over the challenge when nobody is sending it (still
   * inside the hold's transaction, so two retries cannot both take it). */
  async #retake(seen: Seen, claim: ChallengeClaim | undefined): Promise<HoldResult> {
    const settled: HoldResult = { id: seen.id, fresh: false, challenge: seen.challenge, note: seen.challenge_note, owned: false };
    if (claim === undefined || seen.state !== 'held' || !claimAbandoned(seen.challenge, seen.challenge_note, claim.view)) return settled;
    await this.db.run(`UPDATE messages SET challenge = 'sending', challenge_note = ? WHERE id = ?`, [claim.note, seen.id]);
    return { id: seen.id, fresh: false, challenge: 'sending', note: claim.note, owned: true };
  }

  /** Held messages whose challenge nobody is sending: never claimed, or claimed by a delivery that
   * is gone (claim.ts). `vouch fsck` takes them over. */
  async abandonedChallenges(view: ClaimView): Promise<Held[]> {
    const rows = await this.db.all<Row>(`SELECT ${META} FROM messages WHERE state = 'held' AND challenge IN ('pending', 'sending') ORDER BY received`);
    return rows.filter((r) => claimAbandoned(r.challenge, r.challenge_note, view)).map(toHeld);
  }

  /** Claims the challenge of a held message if it is still as `seen` found it (one statement: of
   * two claimers, one wins). True when this call claimed it. */
  async claimChallenge(seen: Pick<Held, 'id' | 'challenge' | 'challengeNote'>, note: string): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE messages SET challenge = 'sending', challenge_note = ? WHERE id = ? AND state = 'held' AND challenge = ? AND challenge_note = ?`,
      [note, seen.id, seen.challenge, seen.challengeNote],
    );
    return r.changes === 1;
  }

  /** Stores a body in pieces of BODY_CHUNK bytes (views of `raw`, never copies of all of it); an
   * empty body is one empty piece, so raw() tells it from a missing one. */
  async #putBody(id: string, raw: Buffer): Promise<void> {
    let seq = 0;
    for (let off = 0; off < raw.length || seq === 0; off += BODY_CHUNK) {
      await this.db.run('INSERT INTO bodies (id, seq, bytes) VALUES (?, ?, ?)', [id, seq++, raw.subarray(off, off + BODY_CHUNK)]);
    }
  }

  /** The message held under `m.digest`, if any, and which rate limit (if any) a challenge to its
   * sender would pass: one query. */
  async #seenAndLimits(m: HoldInput, rate: RateLimits | undefined): Promise<{ seen: Seen | undefined; limited: string | undefined }> {
    const now = m.received;
    const hour = now - 3_600_000;
    const row = await this.db.get<Partial<Seen> & { n_sender: number; n_domain: number; n_all: number }>(
      `SELECT m.id, m.state, m.challenge, m.challenge_note, m.sender, m.recipient,
              (SELECT count(*) FROM challenges WHERE sender_key = ? AND sent > ?) AS n_sender,
              (SELECT count(*) FROM challenges WHERE domain = ? AND sent > ?) AS n_domain,
              (SELECT count(*) FROM challenges WHERE sent > ?) AS n_all
         FROM (SELECT 1) LEFT JOIN messages m ON m.digest = ?`,
      [m.senderKey, now - (rate?.window ?? 0), rate?.domain ?? '', hour, hour, m.digest],
    );
    const seen = row?.id === undefined || row.id === null ? undefined : (row as Seen);
    let limited: string | undefined;
    if (rate !== undefined && row !== undefined) {
      if (row.n_sender > 0) limited = 'sender already challenged recently';
      else if (row.n_domain >= rate.perDomainHourly) limited = 'hourly cap for the sender domain';
      else if (row.n_all >= rate.globalHourly) limited = 'global hourly cap';
    }
    return { seen, limited };
  }


  async get(id: string): Promise<Held | undefined> {
    const r = await this.db.get<Row>(`SELECT ${META} FROM messages WHERE id = ?`, [id]);
    return r && toHeld(r);
  }

  /** The stored bytes of a held message, byte for byte, or undefined when there are none. */
  async raw(id: string): Promise<Buffer | undefined> {
    const rows = await this.db.all<{ bytes: Buffer }>('SELECT bytes FROM bodies WHERE id = ? ORDER BY seq', [id]);
    if (rows.length <= 1) return rows[0]?.bytes;
    return Buffer.concat(rows.map((r) => r.bytes));
  }

  /** Held messages, newest first; never reads a body. */
  /** listFilter, with the search index first brought up to date when the filter uses it. */
  async #filter(q: ListQuery): Promise<{ where: string; params: Param[] }> {
    if (usesTextIndex(q)) await this.indexText();
    return listFilter(q);
  }

  /** Takes the messages held since the search index was last brought up to date into it (schema 9:
   * holds leave that to the first search after them). One transaction; nothing when it is current. */
  async indexText(): Promise<void> {
    const row = await this.db.get<{ behind: number }>('SELECT (SELECT coalesce(max(rowid), 0) FROM messages) > upto AS behind FROM held_text_mark');
    if (row?.behind !== 1) return;
    await this.db.tx(() =>
      this.db.exec(
        `INSERT INTO held_text (rowid, sender, from_header, subject)
           SELECT rowid, sender, from_header, subject FROM messages WHERE rowid > (SELECT upto FROM held_text_mark) ORDER BY rowid;
         UPDATE held_text_mark SET upto = (SELECT coalesce(max(rowid), 0) FROM messages);`,
      ),
    );
  }

  async list(q: ListQuery = {}): Promise<Held[]> {
    const { where, params } = await this.#filter(q);
    const rows = await this.db.all<Row>(
      `SELECT ${META} FROM messages WHERE ${where} ORDER BY received DESC, id DESC LIMIT ? OFFSET ?`,
      [...params, q.limit ?? -1, q.offset ?? 0],
    );
    return rows.map(toHeld);
  }

  async countHeld(q: ListQuery = {}): Promise<number> {
    const { where, params } = await this.#filter(q);
    return (await this.db.get<{ n: number }>(`SELECT count(*) AS n FROM messages WHERE ${where}`, params))?.n ?? 0;
  }

  /** Counts of held messages by reason, for the review page. */
  async reasons(): Promise<{ reason: string; n: number }[]> {
    return this.db.all(`SELECT reason, count(*) AS n FROM messages WHERE state IN ('held', 'releasing') GROUP BY reason ORDER BY n DESC`);
  }

  /** Held messages from one sender (by key), oldest first. */
  async heldFrom(senderKey: string): Promise<Held[]> {
    const rows = await this.db.all<Row>(
      `SELECT ${META} FROM messages WHERE sender_key = ? AND state IN ('held', 'releasing') ORDER BY received`,
      [senderKey],
    );
    return rows.map(toHeld);
  }

  async setChallenge(id: string, state: ChallengeState, note: string): Promise<void> {
    await this.db.run('UPDATE messages SET challenge = ?, challenge_note = ? WHERE id = ?', [state, note, id]);
  }

  /** Marks a challenge sent, in one round trip and without waiting for an fsync: the mark outlives
   * a crash of this process (it is in the WAL), and a power loss can only take it back to
   * "pending", which is what it was while the request was on its way. (The message itself was
   * held, and fsynced, before the request went out.) */
  async challengeSent(id: string): Promise<void> {
    // One exec, so the id is written into the statement: it must be an id and nothing else.
    if (!isId(id)) throw new Error('challengeSent: not an id');
    try {
      await this.db.exec(`PRAGMA synchronous = NORMAL; UPDATE messages SET challenge = 'sent', challenge_note = '' WHERE id = '${id}' AND challenge IN ('sending', 'pending'); PRAGMA synchronous = FULL;`);
    } catch (err) {
      await this.db.exec('PRAGMA synchronous = FULL');
      throw err;
    }
  }

  /** Claims a held message's challenge for a request the user asked for (the review page's "Ask
   * now"): only one held back by a limit or failed, stored as 'sending' with the claim's note so no
   * delivery sends it too. False when it is in no such state. */
  async claimAskNow(id: string, note: string): Promise<boolean> {
    const r = await this.db.run(
      `UPDATE messages SET challenge = 'sending', challenge_note = ? WHERE id = ? AND state = 'held' AND challenge IN ('suppressed', 'failed', 'none')`,
      [note, id],
    );
    return r.changes > 0;
  }

  /** Step one of a release: fixes the Maildir file name the message will have. Returns the name
   * (the same one on a retry), or undefined when the message is not held. */
  async beginRelease(id: string, name: () => string): Promise<string | undefined> {
    return this.db.tx(async () => {
      const r = await this.db.get<{ state: MessageState; maildir_name: string | null }>(
        'SELECT state, maildir_name FROM messages WHERE id = ?',
        [id],
      );
      if (!r || (r.state !== 'held' && r.state !== 'releasing')) return undefined;
      if (r.state === 'releasing' && r.maildir_name) return r.maildir_name;
      const n = name();
      await this.db.run(`UPDATE messages SET state = 'releasing', maildir_name = ? WHERE id = ?`, [n, id]);
      return n;
    });
  }

  /** Step two: the file is in the Maildir; the body is no longer needed (but for what `learn`
   * queues of it for the classifier, in the same transaction). */
  async finishRelease(id: string, now: number, learn?: LearnAs): Promise<void> {
    await this.db.tx(async () => {
      const r = await this.db.run(`UPDATE messages SET state = 'released', settled = ? WHERE id = ? AND state = 'releasing'`, [now, id]);
      if (r.changes > 0) {
        if (learn) await this.#queueHeld([id], learn, now);
        await this.db.run('DELETE FROM bodies WHERE id = ?', [id]);
        await this.count('released', now);
      }
    });
  }

  /** Deletes held messages; returns the ones that were held (for blacklisting their senders).
   * Deleted mail keeps its body (the trash: restore() brings it back until emptyTrash()); expired
   * mail does not. A few statements per CHUNK ids, so "all matching" on thousands stays quick.
   * `learn` queues each (those `learn.only` accepts) for the classifier, in the same transaction. */
  async delete(
    ids: readonly string[],
    now: number,
    kind: 'deleted' | 'expired' = 'deleted',
    learn?: LearnAs & { readonly only?: (h: Held) => boolean },
  ): Promise<Held[]> {
    return this.db.tx(async () => {
      const out: Held[] = [];
      for (const part of chunks(unique(ids))) {
        const marks = part.map(() => '?').join(',');
        // `+state`: by the primary key. A plain state test drew the planner to the state index, which
        // read every held row for each group of ids (a Block of 10,000 took seconds).
        const rows = await this.db.all<Row>(`SELECT ${META} FROM messages WHERE +state = 'held' AND id IN (${marks})`, part);
        if (rows.length === 0) continue;
        const got = rows.map((r) => r.id);
        const these = got.map(() => '?').join(',');
        await this.db.run(`UPDATE messages SET state = ?, settled = ? WHERE +state = 'held' AND id IN (${these})`, [kind, now, ...got]);
        if (learn) await this.#queueHeld(rows.filter((r) => learn.only === undefined || learn.only(toHeld(r))).map((r) => r.id), learn, now);
        if (kind === 'expired') await this.db.run(`DELETE FROM bodies WHERE id IN (${these})`, got);
        out.push(...rows.map(toHeld));
      }
      if (out.length > 0) await this.count(kind, now, out.length);
      return out;
    });
  }

  /** Brings deleted messages still in the trash back to the held mail; returns the ones restored. */
  async restore(ids: readonly string[], now: number): Promise<Held[]> {
    return this.db.tx(async () => {
      const out: Held[] = [];
      for (const part of chunks(unique(ids))) {
        const rows = await this.db.all<Row>(
          `SELECT ${META} FROM messages WHERE +state = 'deleted' AND id IN (${part.map(() => '?').join(',')})
             AND EXISTS (SELECT 1 FROM bodies WHERE bodies.id = messages.id AND bodies.seq = 0)`,
          part,
        );
        if (rows.length === 0) continue;
        const got = rows.map((r) => r.id);
        await this.db.run(`UPDATE messages SET state = 'held', settled = ? WHERE +state = 'deleted' AND id IN (${got.map(() => '?').join(',')})`, [now, ...got]);
        out.push(...rows.map((r) => toHeld({ ...r, state: 'held' })));
      }
      return out;
    });
  }

  /** Messages by id (any state), in one query a CHUNK ids; unknown ids are left out. */
  async getMany(ids: readonly string[]): Promise<Held[]> {
    const out: Held[] = [];
    for (const part of chunks(unique(ids))) {
      out.push(...(await this.db.all<Row>(`SELECT ${META} FROM messages WHERE id IN (${part.map(() => '?').join(',')})`, part)).map(toHeld));
    }
    return out;
  }

  /** What an action on held mail decides by, for many messages at once: the sender, the From
   * header and the reason of each one still held (no body, no signals). */
  async heldBrief(ids: readonly string[]): Promise<(WhyKey & { readonly id: string; readonly sender: string; readonly senderKey: string; readonly fromHeader: string })[]> {
    const out: (WhyKey & { id: string; sender: string; senderKey: string; fromHeader: string })[] = [];
    for (const part of chunks(unique(ids))) {
      out.push(...(await this.db.all<WhyKey & { id: string; sender: string; senderKey: string; fromHeader: string }>(
        // By the primary key (a state test here would draw the planner to the held-only indexes).
        `SELECT id, sender, sender_key AS senderKey, from_header AS fromHeader, reason, challenge, challenge_note AS note
           FROM messages WHERE id IN (${part.map(() => '?').join(',')}) AND +state IN ('held', 'releasing')`,
        part,
      )));
    }
    return out;
  }

  /** The ids of all held mail of these senders (by key). */
  async heldOf(senderKeys: readonly string[]): Promise<string[]> {
    const out: string[] = [];
    for (const part of chunks(unique(senderKeys))) {
      const rows = await this.db.all<{ id: string }>(
        `SELECT id FROM messages INDEXED BY messages_held_sender WHERE state IN ('held', 'releasing') AND sender_key IN (${part.map(() => '?').join(',')})`,
        part,
      );
      out.push(...rows.map((r) => r.id));
    }
    return out;
  }

  /** Deleted messages that can still be restored, most recently deleted first. */
  async trash(q: { readonly limit?: number; readonly offset?: number } = {}): Promise<(Held & { readonly deleted: number })[]> {
    const rows = await this.db.all<Row & { settled: number }>(
      `SELECT ${META}, settled FROM messages INDEXED BY messages_trash WHERE state = 'deleted'
         AND EXISTS (SELECT 1 FROM bodies WHERE bodies.id = messages.id) ORDER BY settled DESC, id DESC LIMIT ? OFFSET ?`,
      [q.limit ?? -1, q.offset ?? 0],
    );
    return rows.map((r) => ({ ...toHeld(r), deleted: r.settled }));
  }

  /** Empties the trash of mail deleted before `before`: their bodies go, so they cannot come back. */
  async emptyTrash(before: number): Promise<number> {
    return this.db.tx(async () => {
      const ids = await this.db.all<{ id: string }>(
        `SELECT id FROM messages INDEXED BY messages_trash WHERE state = 'deleted' AND settled < ?
           AND EXISTS (SELECT 1 FROM bodies WHERE bodies.id = messages.id)`,
        [before],
      );
      for (const { id } of ids) await this.db.run('DELETE FROM bodies WHERE id = ?', [id]);
      return ids.length;
    });
  }

  /** Puts a released message back among the held mail with its bytes (the undo of a release that
   * took the file back out of the Maildir). False when it was not released. */
  async unrelease(id: string, raw: Buffer, now: number): Promise<boolean> {
    return this.db.tx(async () => {
      const r = await this.db.run(`UPDATE messages SET state = 'held', maildir_name = NULL, settled = ? WHERE id = ? AND state = 'released'`, [now, id]);
      if (r.changes === 0) return false;
      await this.db.run('DELETE FROM bodies WHERE id = ?', [id]);
      await this.#putBody(id, raw);
      return true;
    });
  }

  /** Ids of held messages received before `before`. */
  async heldBefore(before: number): Promise<string[]> {
    const rows = await this.db.all<{ id: string }>(`SELECT id FROM messages WHERE state = 'held' AND received < ?`, [before]);
    return rows.map((r) => r.id);
  }

  /** Messages whose release was begun but not finished (a crash in between). */
  async releasing(): Promise<string[]> {
    return (await this.db.all<{ id: string }>(`SELECT id FROM messages WHERE state = 'releasing'`)).map((r) => r.id);
  }

  /** Forgets settled messages and journals older than `before` (their rows only kept idempotency). */
  async prune(before: number): Promise<void> {
    await this.db.tx(async () => {
      await this.db.run(`DELETE FROM messages WHERE state IN ('released', 'deleted', 'expired') AND settled < ?`, [before]);
      await this.db.run('DELETE FROM deliveries WHERE at < ?', [before]);
      pruneJournal(this.home, dayOf(before));
      await this.db.run('DELETE FROM challenges WHERE sent < ?', [before]);
      // A held message's queue row outlives it no longer than its own row; a bootstrap's key
      // (sha256:) is kept, so the same mailbox is never learned twice.
      await this.db.run(`DELETE FROM learning WHERE done < ? AND key NOT LIKE 'sha256:%' AND learned = verdict`, [before]);
    });
  }

  // ---- the local blocklist of client networks

  /** The entry for the narrowest listed network that holds `ip` (listed at `now`), if any. */
  async blockedClient(ip: string, now: number): Promise<BlockEntry | undefined> {
    const nets = netsHolding(ip);
    const rows = await this.db.all<BlockRow>(
      `SELECT ${BLOCK} FROM blocklist WHERE net IN (${nets.map(() => '?').join(',')}) AND (listed_until IS NULL OR listed_until > ?)`,
      [...nets, now],
    );
    const best = rows.sort((a, b) => nets.indexOf(a.net) - nets.indexOf(b.net))[0];
    return best && toBlock(best);
  }

  async blockEntries(q: { readonly now: number; readonly all?: boolean }): Promise<BlockEntry[]> {
    const rows = await this.db.all<BlockRow>(
      `SELECT ${BLOCK} FROM blocklist ${q.all === true ? '' : 'WHERE listed_until IS NULL OR listed_until > ?'} ORDER BY net`,
      q.all === true ? [] : [q.now],
    );
    return rows.map(toBlock);
  }

  /** Records one more bad message from `net`, as `next` (the aging schedule, policy/blocklist.ts)
   * says from the entry it had; nothing when mail from that network was ever whitelisted or
   * released. Returns the entry written, or undefined. */
  async recordBadClient(net: string, next: (prev: BlockEntry | undefined) => BlockEntry): Promise<BlockEntry | undefined> {
    return this.db.tx(async () => {
      if ((await this.db.get('SELECT 1 FROM good_clients WHERE net = ?', [net])) !== undefined) return undefined;
      const row = await this.db.get<BlockRow>(`SELECT ${BLOCK} FROM blocklist WHERE net = ?`, [net]);
      const e = next(row && toBlock(row));
      await this.#putBlock(e);
      return e;
    });
  }

  /** Lists a network by hand, until removed (an automatic entry for it becomes a manual one). */
  async addBlock(net: string, now: number, why = 'added by hand'): Promise<void> {
    await this.db.run(
      `INSERT INTO blocklist (net, count, first_seen, last_seen, listed_until, repeats, why) VALUES (?, 0, ?, ?, NULL, 0, ?)
         ON CONFLICT (net) DO UPDATE SET listed_until = NULL, why = excluded.why`,
      [net, now, now, why],
    );
  }

  /** Takes back what recordBadClient wrote for an action: the entry as it was before (or none),
   * but only while the entry is still the one written (later evidence is kept). */
  async revertBadClient(change: BlockChange): Promise<boolean> {
    return this.db.tx(async () => {
      const row = await this.db.get<BlockRow>(`SELECT ${BLOCK} FROM blocklist WHERE net = ?`, [change.net]);
      const now = row && toBlock(row);
      const a = change.after;
      if (!now || now.count !== a.count || now.lastSeen !== a.lastSeen || now.listedUntil !== a.listedUntil || now.repeats !== a.repeats) return false;
      if (change.before === undefined) await this.db.run('DELETE FROM blocklist WHERE net = ?', [change.net]);
      else await this.#putBlock(change.before);
      return true;
    });
  }

  async removeBlock(net: string): Promise<number> {
    return (await this.db.run('DELETE FROM blocklist WHERE net = ?', [net])).changes;
  }

  /** Mail from `ip` was released: its network (the address, or its /ipv6Prefix) is never listed,
   * and leaves the list unless the user listed it by hand. Not an address, or a local one: nothing. */
  async markGoodClient(ip: string, ipv6Prefix: number, now: number): Promise<GoodChange | undefined> {
    const addr = canonicalIp(ip);
    if (addr === undefined || isLocalIp(addr)) return undefined;
    const net = netOf(addr, familyOf(addr) === 4 ? 32 : ipv6Prefix).text;
    return this.db.tx(async () => {
      const before = await this.db.get<{ seen: number }>('SELECT seen FROM good_clients WHERE net = ?', [net]);
      const listed = await this.db.get<BlockRow>(`SELECT ${BLOCK} FROM blocklist WHERE net = ? AND listed_until IS NOT NULL`, [net]);
      await this.db.run('INSERT INTO good_clients (net, seen) VALUES (?, ?) ON CONFLICT (net) DO UPDATE SET seen = excluded.seen', [net, now]);
      await this.db.run('DELETE FROM blocklist WHERE net = ? AND listed_until IS NOT NULL', [net]);
      return { net, seen: now, seenBefore: before?.seen, unlisted: listed && toBlock(listed) };
    });
  }

  /** Takes back what markGoodClient did for a release that was undone: the network is no longer
   * marked good (or as good as before), and an entry it took off the blocklist returns; only
   * while nothing marked it since. */
  async revertGoodClient(c: GoodChange): Promise<boolean> {
    return this.db.tx(async () => {
      const now = await this.db.get<{ seen: number }>('SELECT seen FROM good_clients WHERE net = ?', [c.net]);
      if (now?.seen !== c.seen) return false;
      if (c.seenBefore === undefined) await this.db.run('DELETE FROM good_clients WHERE net = ?', [c.net]);
      else await this.db.run('UPDATE good_clients SET seen = ? WHERE net = ?', [c.seenBefore, c.net]);
      if (c.unlisted !== undefined && (await this.db.get('SELECT 1 FROM blocklist WHERE net = ?', [c.net])) === undefined) await this.#putBlock(c.unlisted);
      return true;
    });
  }

  /** Forgets automatic entries whose listing ended before `before` (their history with them). */
  async pruneBlocks(before: number): Promise<number> {
    return (await this.db.run('DELETE FROM blocklist WHERE listed_until IS NOT NULL AND listed_until < ?', [before])).changes;
  }

  async #putBlock(e: BlockEntry): Promise<void> {
    await this.db.run(
      `INSERT INTO blocklist (net, count, first_seen, last_seen, listed_until, repeats, why) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (net) DO UPDATE SET count = excluded.count, first_seen = excluded.first_seen, last_seen = excluded.last_seen,
           listed_until = excluded.listed_until, repeats = excluded.repeats, why = excluded.why`,
      [e.net, e.count, e.firstSeen, e.lastSeen, e.listedUntil, e.repeats, e.why],
    );
  }

  // ---- the classifier's learning queue

  /** Queues held messages' bytes (each one's first piece, cut to maxBytes) under `held:<id>`, in
   * one statement (a Block of 10,000 messages paid a round trip each). At most CHUNK ids. */
  async #queueHeld(ids: readonly string[], learn: LearnAs, now: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db.run(
      `INSERT INTO learning (key, verdict, queued, bytes)
         SELECT 'held:' || id, ?, ?, substr(bytes, 1, ?) FROM bodies WHERE seq = 0 AND id IN (${ids.map(() => '?').join(',')})
         ON CONFLICT (key) DO UPDATE SET verdict = excluded.verdict, queued = excluded.queued, bytes = coalesce(excluded.bytes, bytes)`,
      [learn.verdict, now, learn.maxBytes, ...ids],
    );
  }

  /** Queues a message to be learned as `verdict`. A message already learned the other way is
   * unlearned first when the queue is applied; one already learned this way is left alone. */
  async queueLearning(key: string, verdict: LearnVerdict, bytes: Buffer, now: number): Promise<void> {
    await this.db.run(
      `INSERT INTO learning (key, verdict, queued, bytes) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET verdict = excluded.verdict, queued = excluded.queued, bytes = excluded.bytes`,
      [key, verdict, now, bytes],
    );
  }

  /** Up to `limit` queued messages whose verdict the word list does not hold yet, oldest first. */
  async learningDue(limit: number): Promise<LearnItem[]> {
    return this.db.all<LearnItem>(
      `SELECT key, verdict, learned, bytes FROM learning INDEXED BY learning_due
         WHERE learned IS NULL OR learned <> verdict ORDER BY queued LIMIT ?`,
      [limit],
    );
  }

  /** Records that the word list now holds each message as `verdict`. `decided`: the verdict is
   * also the message's latest decision (a bootstrap says so; the queue keeps its own, which a
   * later decision may have changed meanwhile: then the row stays due). */
  async markLearned(items: readonly { readonly key: string; readonly verdict: LearnVerdict }[], now: number, decided = false): Promise<void> {
    if (items.length === 0) return;
    await this.db.tx(async () => {
      const st = await this.db.prepare(
        `INSERT INTO learning (key, verdict, learned, queued, done) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET learned = excluded.learned, done = excluded.done,
             verdict = CASE WHEN ? THEN excluded.verdict ELSE learning.verdict END`,
      );
      try {
        for (const i of items) await stepRun(st, [i.key, i.verdict, i.verdict, now, now, decided ? 1 : 0]);
      } finally {
        await finalize(st);
      }
    });
  }

  /** What the word list holds for each of these keys (absent: nothing). */
  async learnedAs(keys: readonly string[]): Promise<Map<string, LearnVerdict>> {
    const out = new Map<string, LearnVerdict>();
    for (let i = 0; i < keys.length; i += 500) {
      const part = keys.slice(i, i + 500);
      const rows = await this.db.all<{ key: string; learned: LearnVerdict | null }>(
        `SELECT key, learned FROM learning WHERE key IN (${part.map(() => '?').join(',')})`,
        part,
      );
      for (const r of rows) if (r.learned !== null) out.set(r.key, r.learned);
    }
    return out;
  }

  // ---- confirmations and keywords

  /** True when this confirm id is for a message we know and has not been used yet. */
  async confirmUsable(id: string): Promise<boolean> {
    const row = await this.db.get<{ state: MessageState; used: number | null }>(
      'SELECT m.state AS state, c.used AS used FROM messages m LEFT JOIN confirms c ON c.id = m.id WHERE m.id = ?',
      [id],
    );
    return row !== undefined && row.used === null && row.state !== 'deleted' && row.state !== 'expired';
  }

  async useConfirm(id: string, now: number): Promise<void> {
    await this.db.run('INSERT OR IGNORE INTO confirms (id, used) VALUES (?, ?)', [id, now]);
  }

  async keywordRevoked(word: string): Promise<boolean> {
    return (await this.db.get('SELECT 1 FROM keywords WHERE word = ? AND revoked > 0', [word])) !== undefined;
  }

  async revokeKeyword(word: string, now: number): Promise<void> {
    await this.db.run('INSERT INTO keywords (word, revoked) VALUES (?, ?) ON CONFLICT (word) DO UPDATE SET revoked = excluded.revoked', [word, now]);
  }

  // ---- the user's own mail and vouch's digests

  /** Records Message-IDs (without the angle brackets) of mail that left: a later message naming one
   * is a reply to it (or, for a digest, the digest itself coming back). Recording one again renews it. */
  async recordOutgoing(ids: readonly string[], kind: OutgoingKind, now: number): Promise<void> {
    if (ids.length === 0) return;
    await this.db.tx(async () => {
      for (const id of ids) {
        await this.db.run(
          'INSERT INTO outgoing (message_id, kind, at) VALUES (?, ?, ?) ON CONFLICT (message_id) DO UPDATE SET kind = excluded.kind, at = excluded.at',
          [id, kind, now],
        );
      }
    });
  }

  /** Which of these Message-IDs vouch recorded, and as what: one indexed query. */
  async knownOutgoing(ids: readonly string[]): Promise<{ id: string; kind: OutgoingKind }[]> {
    if (ids.length === 0) return [];
    return this.db.all<{ id: string; kind: OutgoingKind }>(
      `SELECT message_id AS id, kind FROM outgoing WHERE message_id IN (${ids.map(() => '?').join(',')})`,
      [...ids],
    );
  }

  /** Forgets Message-IDs recorded before `before`; returns how many. */
  async forgetOutgoing(before: number): Promise<number> {
    return (await this.db.run('DELETE FROM outgoing WHERE at < ?', [before])).changes;
  }

  /** Held messages no digest has named yet, newest first (at most `limit`), how many there are in
   * all, and `upTo`, what markDigested takes to mark exactly these: the newest row at the time of
   * this read (a message held meanwhile, whatever its time, comes after it). */
  async undigested(limit: number): Promise<{ held: Held[]; total: number; upTo: number }> {
    return this.db.tx(async () => {
      const rows = await this.db.all<Row>(
        `SELECT ${META} FROM messages WHERE state = 'held' AND digested IS NULL ORDER BY received DESC, id DESC LIMIT ?`,
        [limit],
      );
      const agg = await this.db.get<{ n: number; last: number | null }>(
        `SELECT (SELECT count(*) FROM messages WHERE state = 'held' AND digested IS NULL) AS n, (SELECT max(rowid) FROM messages) AS last`,
      );
      return { held: rows.map(toHeld), total: agg?.n ?? 0, upTo: agg?.last ?? 0 };
    });
  }

  /** Marks the held messages undigested() counted (and not yet digested) as named in a digest. */
  async markDigested(upTo: number, now: number): Promise<number> {
    return (await this.db.run(`UPDATE messages SET digested = ? WHERE state = 'held' AND digested IS NULL AND rowid <= ?`, [now, upTo])).changes;
  }

  // ---- direct deliveries (idempotent across MTA retries)

  /** The Maildir name fixed for this delivery digest: the earlier one on a retry, else a new one.
   * One statement, committed before it answers: it inserts the claim (and the trigger counts it),
   * or on a retry touches the row it finds and returns that row's name. */
  async claimDelivery(digest: string, name: string, now: number): Promise<{ name: string; fresh: boolean }> {
    // all(), not get(): it steps the statement to its end, so the commit happens before the answer.
    const [row] = await this.db.all<{ name: string }>(
      `INSERT INTO deliveries (digest, name, at) VALUES (?, ?, ?)
         ON CONFLICT (digest) DO UPDATE SET digest = excluded.digest RETURNING name`,
      [digest, name, now],
    );
    if (row === undefined) throw new Error('claimDelivery: no row returned');
    return { name: row.name, fresh: row.name === name };
  }

  // ---- activity

  async count(kind: string, now: number, n = 1): Promise<void> {
    await this.db.run(
      'INSERT INTO events (day, kind, n) VALUES (?, ?, ?) ON CONFLICT (day, kind) DO UPDATE SET n = n + excluded.n',
      [dayOf(now), kind, n],
    );
  }

  /** Counts per day and kind: the store's events, plus the direct deliveries the journal holds
   * (stores older than the journal counted those in events; both are added up). */
  async activity(sinceDay: string): Promise<{ day: string; kind: string; n: number }[]> {
    const rows = await this.db.all<{ day: string; kind: string; n: number }>('SELECT day, kind, n FROM events WHERE day >= ? ORDER BY day', [sinceDay]);
    for (const j of countByDay(this.home, sinceDay)) {
      const row = rows.find((r) => r.day === j.day && r.kind === 'delivered');
      if (row) row.n += j.n;
      else rows.push({ day: j.day, kind: 'delivered', n: j.n });
    }
    return rows.sort((a, b) => (a.day < b.day ? -1 : a.day > b.day ? 1 : 0));
  }

  /** Copies the WAL into the store and empties its file, when no reader holds it back (then it
   * leaves it for later: never an error). For `vouch expire`, where it costs nobody a delivery. */
  async checkpoint(): Promise<{ done: boolean }> {
    try {
      const row = await this.db.get<{ busy: number }>('PRAGMA wal_checkpoint(TRUNCATE)');
      return { done: row?.busy === 0 };
    } catch {
      return { done: false };
    }
  }

  /** The store's files and their sizes in bytes (a missing one is 0). */
  files(): { name: string; bytes: number }[] {
    return ['', '-wal'].map((suffix) => {
      const name = `${basename(this.path)}${suffix}`;
      let bytes = 0;
      try {
        bytes = statSync(`${this.path}${suffix}`).size;
      } catch {
        /* no such file: 0 */
      }
      return { name, bytes };
    });
  }

  async integrityCheck(): Promise<string[]> {
    const rows = await this.db.all<{ integrity_check: string }>('PRAGMA integrity_check');
    return rows.map((r) => r.integrity_check);
  }

  // ---- the review page (web/): partial indexes over held mail only, pinned with INDEXED BY,
  // because without statistics the planner prefers (state, received) and sorts every held row.

  /** Creates the review page's indexes if missing (once per `vouch web`; cheap when present; the
   * first start on 100,000 held messages takes a fraction of a second), and takes the mail held
   * since the last search into the search index (schema 9), so the page's first search need not. */
  async ensureReviewIndexes(): Promise<void> {
    await this.db.exec(`
      CREATE INDEX IF NOT EXISTS messages_held_received ON messages(received, id) WHERE state IN ('held', 'releasing');
      CREATE INDEX IF NOT EXISTS messages_held_reason ON messages(reason, received, id) WHERE state IN ('held', 'releasing');
      CREATE INDEX IF NOT EXISTS messages_held_kind ON messages(reason, challenge, challenge_note, received, id) WHERE state IN ('held', 'releasing');`);
    await this.indexText();
  }

  /** A page of held messages, newest first, as list() but through the review indexes; never
   * reads a body. Needs ensureReviewIndexes(). */
  async heldPage(q: ListQuery): Promise<Held[]> {
    const { where, params } = await this.#filter(q);
    const index = q.reason ? 'messages_held_reason' : whyOnly(q) ? 'messages_held_kind' : 'messages_held_received';
    const rows = await this.db.all<Row>(
      `SELECT ${META} FROM messages INDEXED BY ${index} WHERE ${where} ORDER BY received DESC, id DESC LIMIT ? OFFSET ?`,
      [...params, q.limit ?? -1, q.offset ?? 0],
    );
    return rows.map(toHeld);
  }

  /** Held mail grouped by sender, the senders with the newest mail first; never reads a body.
   * Without a filter the groups come from the counts the triggers keep (held_senders). */
  async senders(q: ListQuery): Promise<SenderGroup[]> {
    const { where, params } = await this.#filter(q);
    const groups = unfiltered(q)
      ? await this.db.all<{ key: string; n: number; last: number }>(
          'SELECT sender_key AS key, n, last FROM held_senders INDEXED BY held_senders_last ORDER BY last DESC, sender_key DESC LIMIT ? OFFSET ?',
          [q.limit ?? -1, q.offset ?? 0],
        )
      : q.why?.length === 1 && whyOnly(q) && q.limit !== undefined
      ? await this.#sendersOfKind(q, where, params)
      : await this.db.all<{ key: string; n: number; last: number }>(
          `SELECT sender_key AS key, count(*) AS n, max(received) AS last FROM messages INDEXED BY ${groupIndex(q)}
             WHERE ${where} GROUP BY sender_key ORDER BY last DESC, key DESC LIMIT ? OFFSET ?`,
          [...params, q.limit ?? -1, q.offset ?? 0],
        );
    if (groups.length === 0) return [];
    const rows = await this.db.all<Row & { rn: number }>(
      `SELECT * FROM (SELECT ${META}, row_number() OVER (PARTITION BY sender_key ORDER BY received DESC, id DESC) AS rn
         FROM messages INDEXED BY messages_held_sender WHERE ${where} AND sender_key IN (${groups.map(() => '?').join(',')})) WHERE rn = 1`,
      [...params, ...groups.map((g) => g.key)],
    );
    const newest = new Map(rows.map((r) => [r.sender_key, toHeld(r)]));
    return groups.flatMap((g) => {
      const h = newest.get(g.key);
      return h ? [{ senderKey: g.key, n: g.n, newest: h }] : [];
    });
  }

  /** For a search: the sender view's page with how many messages and senders match, from one pass
   * over the matches (a search costs a trigram lookup; counting, grouping and fetching the newest
   * of each group separately paid it four times). */
  async senderSummary(q: ListQuery): Promise<{ matching: number; senderCount: number; groups: SenderGroup[] }> {
    const { where, params } = await this.#filter(q);
    // SQLite takes a bare column (id) from the row that gives max(received).
    const all = await this.db.all<{ key: string; n: number; last: number; id: string }>(
      `SELECT sender_key AS key, count(*) AS n, max(received) AS last, id FROM messages INDEXED BY ${groupIndex(q)} WHERE ${where} GROUP BY sender_key`,
      params,
    );
    const matching = all.reduce((sum, g) => sum + g.n, 0);
    const offset = q.offset ?? 0;
    const page = all.sort((a, b) => b.last - a.last || (a.key < b.key ? 1 : a.key > b.key ? -1 : 0)).slice(offset, q.limit === undefined ? undefined : offset + q.limit);
    const newest = new Map((await this.getMany(page.map((g) => g.id))).map((h) => [h.id, h]));
    const groups = page.flatMap((g) => {
      const h = newest.get(g.id);
      return h ? [{ senderKey: g.key, n: g.n, newest: h }] : [];
    });
    return { matching, senderCount: all.length, groups };
  }

  /** senders() for one reason triple: the kind index walked newest first, a batch at a time, until
   * the page's senders have turned up (in the order of their newest message), then their counts.
   * Grouping all of a common reason's mail to order its senders cost 15 ms on every page. */
  async #sendersOfKind(q: ListQuery, where: string, params: Param[]): Promise<{ key: string; n: number; last: number }[]> {
    const offset = q.offset ?? 0;
    const want = offset + (q.limit ?? 0);
    const last = new Map<string, number>();
    let after: { received: number; id: string } | undefined;
    const BATCH = 1000;
    for (;;) {
      const rows = await this.db.all<{ key: string; received: number; id: string }>(
        `SELECT sender_key AS key, received, id FROM messages INDEXED BY messages_held_kind WHERE ${where}
           ${after ? 'AND (received < ? OR (received = ? AND id < ?))' : ''} ORDER BY received DESC, id DESC LIMIT ?`,
        [...params, ...(after ? [after.received, after.received, after.id] : []), BATCH],
      );
      for (const r of rows) if (!last.has(r.key)) last.set(r.key, r.received);
      const end = rows[rows.length - 1];
      if (rows.length < BATCH || !end) break;
      // Past the page's last sender, the walk goes on only while a tie on its time could still add one.
      const cut = last.size >= want ? [...last.values()][want - 1] : undefined;
      if (cut !== undefined && end.received < cut) break;
      after = { received: end.received, id: end.id };
    }
    const page = [...last].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? 1 : a[0] > b[0] ? -1 : 0)).slice(offset, want);
    if (page.length === 0) return [];
    const counts = new Map(
      (await this.db.all<{ key: string; n: number }>(
        `SELECT sender_key AS key, count(*) AS n FROM messages INDEXED BY messages_held_why WHERE ${where} AND sender_key IN (${page.map(() => '?').join(',')}) GROUP BY sender_key`,
        [...params, ...page.map(([k]) => k)],
      )).map((r) => [r.key, r.n]),
    );
    return page.map(([key, l]) => ({ key, n: counts.get(key) ?? 0, last: l }));
  }

  async countSenders(q: ListQuery = {}): Promise<number> {
    if (unfiltered(q)) return (await this.db.get<{ n: number }>('SELECT count(*) AS n FROM held_senders'))?.n ?? 0;
    const { where, params } = await this.#filter(q);
    const row = await this.db.get<{ n: number }>(`SELECT count(DISTINCT sender_key) AS n FROM messages INDEXED BY ${groupIndex(q)} WHERE ${where}`, params);
    return row?.n ?? 0;
  }

  /** Held messages counted by (reason, challenge state, note): the review page makes its "why
   * held" filters of these. */
  async heldWhy(): Promise<(WhyKey & { n: number })[]> {
    return this.db.all('SELECT reason, challenge, note, n FROM held_why WHERE n > 0');
  }

  /** The ids of every held message that matches (newest first), at most `limit`. Needs ensureReviewIndexes(). */
  async heldIds(q: ListQuery, limit: number): Promise<string[]> {
    const { where, params } = await this.#filter(q);
    const pinned = whyOnly(q) ? ' INDEXED BY messages_held_kind' : '';
    const rows = await this.db.all<{ id: string }>(`SELECT id FROM messages${pinned} WHERE ${where} ORDER BY received DESC, id DESC LIMIT ?`, [...params, limit]);
    return rows.map((r) => r.id);
  }

  /** The held messages just before and after `h` in the list's order (newest first) under a filter. */
  async neighbours(h: Held, q: ListQuery): Promise<{ prev: string | undefined; next: string | undefined }> {
    // Both in one statement, so a search's trigram lookup is made once for the two (a CTE).
    if (usesTextIndex(q)) await this.indexText();
    const { where, params, match } = listFilter(q, 'matched');
    const row = await this.db.get<{ prev: string | null; next: string | null }>(
      `${match !== undefined ? 'WITH matched(rowid) AS MATERIALIZED (SELECT rowid FROM held_text WHERE held_text MATCH ?) ' : ''}SELECT
         (SELECT id FROM messages INDEXED BY messages_held_received WHERE ${where} AND (received > ? OR (received = ? AND id > ?)) ORDER BY received, id LIMIT 1) AS prev,
         (SELECT id FROM messages INDEXED BY messages_held_received WHERE ${where} AND (received < ? OR (received = ? AND id < ?)) ORDER BY received DESC, id DESC LIMIT 1) AS next`,
      [...(match !== undefined ? [match] : []), ...params, h.received, h.received, h.id, ...params, h.received, h.received, h.id],
    );
    return { prev: row?.prev ?? undefined, next: row?.next ?? undefined };
  }

  /** The first `n` bytes of each message's body (its header, for badges), by id. */
  async heads(ids: readonly string[], n = 4096): Promise<Map<string, Buffer>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db.all<{ id: string; head: Buffer }>(
      `SELECT id, substr(bytes, 1, ?) AS head FROM bodies WHERE seq = 0 AND id IN (${ids.map(() => '?').join(',')})`,
      [n, ...ids],
    );
    return new Map(rows.map((r) => [r.id, r.head]));
  }

  /** Held messages whose sender any of the list keys (as Pattern.key) matches. */
  async heldMatching(keys: readonly string[], limit: number): Promise<string[]> {
    const clauses: string[] = [];
    const params: Param[] = [];
    for (const k of keys) {
      const v = k.slice(2);
      if (k.startsWith('a:')) {
        clauses.push('sender_key = ?');
        params.push(v);
      } else if (k.startsWith('d:')) {
        clauses.push(`sender_key LIKE ? ESCAPE '\\'`);
        params.push(`%@${v.replace(/[\\%_]/g, (c) => `\\${c}`)}`);
      } else if (k.startsWith('s:')) {
        clauses.push(`sender_key LIKE ? ESCAPE '\\'`);
        params.push(`%@%.${v.replace(/[\\%_]/g, (c) => `\\${c}`)}`);
      } else if (k.startsWith('p:')) {
        const at = v.lastIndexOf('@');
        clauses.push(`(sender_key LIKE ? ESCAPE '\\' AND sender_key LIKE ? ESCAPE '\\')`);
        params.push(`${v.slice(0, at).replace(/[\\%_]/g, (c) => `\\${c}`)}%`, `%${v.slice(at).replace(/[\\%_]/g, (c) => `\\${c}`)}`);
      }
    }
    if (clauses.length === 0) return [];
    const rows = await this.db.all<{ id: string }>(
      `SELECT id FROM messages WHERE state = 'held' AND (${clauses.join(' OR ')}) ORDER BY received DESC LIMIT ?`,
      [...params, limit],
    );
    return rows.map((r) => r.id);
  }

  // ---- the undo log and the event log

  /** Records what an action did, for an undo; returns its number. */
  async recordAction(at: number, summary: string, undo: unknown): Promise<number> {
    return (await this.db.run('INSERT INTO actions (at, summary, undo) VALUES (?, ?, ?)', [at, summary, JSON.stringify(undo)])).lastID;
  }

  async action(id: number): Promise<ActionRecord | undefined> {
    const r = await this.db.get<{ id: number; at: number; summary: string; undo: string; undone: number | null }>('SELECT id, at, summary, undo, undone FROM actions WHERE id = ?', [id]);
    return r && { ...r, undo: JSON.parse(r.undo) as unknown };
  }

  /** Marks an action undone; false when it already was (an undo runs once). */
  async markUndone(id: number, now: number): Promise<boolean> {
    return (await this.db.run('UPDATE actions SET undone = ? WHERE id = ? AND undone IS NULL', [now, id])).changes > 0;
  }

  /** Forgets actions older than `before` (what they did can no longer be undone). */
  async pruneActions(before: number): Promise<void> {
    await this.db.run('DELETE FROM actions WHERE at < ?', [before]);
  }

  /** The newest events (at most LOG_KEEP are kept), newest first. */
  async events(limit = LOG_KEEP): Promise<LogEvent[]> {
    // The table itself may hold up to 63 more (schema 9 cuts it back every 64th event).
    return this.db.all('SELECT id, at, kind, ref, sender, detail FROM log ORDER BY id DESC LIMIT ?', [Math.min(limit, LOG_KEEP)]);
  }

  /** reasons() through the review index. Needs ensureReviewIndexes(). */
  async heldReasons(): Promise<{ reason: string; n: number }[]> {
    return this.db.all(
      `SELECT reason, count(*) AS n FROM messages INDEXED BY messages_held_reason WHERE state IN ('held', 'releasing') GROUP BY reason ORDER BY n DESC, reason`,
    );
  }
}

/** An entry of the local blocklist (its aging schedule is policy/blocklist.ts). */
export interface BlockEntry {
  /** The network, "ADDR/LEN". */
  readonly net: string;
  readonly count: number;
  readonly firstSeen: number;
  readonly lastSeen: number;
  /** Listed until then; null = added by hand, listed until removed. */
  readonly listedUntil: number | null;
  /** How many times it was listed again after a listing ran out. */
  readonly repeats: number;
  readonly why: string;
}

/** What releasing mail from a client did to its network: marked good at `seen` (before: at
 * `seenBefore`, or not at all), and the automatic blocklist entry that took off it, if any. */
export interface GoodChange {
  readonly net: string;
  readonly seen: number;
  readonly seenBefore: number | undefined;
  readonly unlisted: BlockEntry | undefined;
}

/** One network's entry before and after an action listed it (an undo puts `before` back). */
export interface BlockChange {
  readonly net: string;
  readonly before: BlockEntry | undefined;
  readonly after: BlockEntry;
}

interface BlockRow {
  net: string;
  count: number;
  first_seen: number;
  last_seen: number;
  listed_until: number | null;
  repeats: number;
  why: string;
}

const BLOCK = 'net, count, first_seen, last_seen, listed_until, repeats, why';

function toBlock(r: BlockRow): BlockEntry {
  return Object.freeze({ net: r.net, count: r.count, firstSeen: r.first_seen, lastSeen: r.last_seen, listedUntil: r.listed_until, repeats: r.repeats, why: r.why });
}

/** Ids (or keys) in groups small enough for one `IN (…)` each. */
const CHUNK = 500;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

function unique(items: readonly string[]): string[] {
  return [...new Set(items)];
}

/** The index a grouping by sender reads: the reason index (it holds the sender too, so the
 * filtered rows are never looked up) when only reasons filter, else the sender index. */
/** A filter by reasons alone: the kind index (reason, challenge, note, received) answers it in
 * order, where a walk of all held mail newest first read nearly every row for a rare reason whose
 * messages are old (10,000 spam behind 90,000 newer messages: 60-90 ms a page). */
function whyOnly(q: ListQuery): boolean {
  return q.why !== undefined && q.why.length > 0 && !q.search && !q.reason && q.senderKey === undefined && !q.challenge;
}

function groupIndex(q: ListQuery): string {
  return q.why !== undefined && !q.search && !q.reason && q.senderKey === undefined ? 'messages_held_why' : 'messages_held_sender';
}

/** A query with no filter: the counts kept by triggers answer it. */
function unfiltered(q: ListQuery): boolean {
  return !q.search && !q.reason && q.why === undefined && q.senderKey === undefined && q.challenge === undefined;
}

function likeOf(search: string): string {
  return `%${search.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** A search of three characters or more: the trigram index finds the rows. */
function usesTextIndex(q: ListQuery): q is ListQuery & { readonly search: string } {
  return q.search !== undefined && [...q.search].length >= 3;
}

/** The WHERE clause of a query over held mail. With `matchedAs`, a search's trigram lookup is left
 * to the caller (a CTE of that name holding the matching rowids) and its phrase returned as `match`. */
function listFilter(q: ListQuery, matchedAs?: string): { where: string; params: Param[]; match?: string } {
  const clauses = [`state IN ('held', 'releasing')`];
  const params: Param[] = [];
  let match: string | undefined;
  if (q.senderKey !== undefined) {
    clauses.push('sender_key = ?');
    params.push(q.senderKey);
  }
  if (q.why !== undefined) {
    // No kinds: a triple no message has (a constant false would keep SQLite from the pinned index).
    const why = q.why.length > 0 ? q.why : [{ reason: '\u0000', challenge: 'none', note: '\u0000' }];
    clauses.push(`(reason, challenge, challenge_note) IN (VALUES ${why.map(() => '(?, ?, ?)').join(', ')})`);
    for (const w of why) params.push(w.reason, w.challenge, w.note);
  }
  if (usesTextIndex(q)) {
    // Three characters or more: the trigram index finds the rows (a substring match, any case).
    const phrase = `"${q.search.replace(/"/g, '""')}"`;
    if (matchedAs !== undefined) {
      clauses.push(`rowid IN (SELECT rowid FROM ${matchedAs})`);
      match = phrase;
    } else {
      clauses.push('rowid IN (SELECT rowid FROM held_text WHERE held_text MATCH ?)');
      params.push(phrase);
    }
  } else if (q.search) {
    const like = likeOf(q.search);
    clauses.push(`(sender LIKE ? ESCAPE '\\' OR from_header LIKE ? ESCAPE '\\' OR subject LIKE ? ESCAPE '\\')`);
    params.push(like, like, like);
  }
  if (q.reason) {
    clauses.push('reason = ?');
    params.push(q.reason);
  }
  if (q.challenge) {
    clauses.push('challenge = ?');
    params.push(q.challenge);
  }
  return { where: clauses.join(' AND '), params, ...(match !== undefined ? { match } : {}) };
}
