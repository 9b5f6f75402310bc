// A small promise face on the sqlite3 package: one connection, WAL, a busy timeout, FULL sync,
// and a transaction helper that takes the write lock up front (BEGIN IMMEDIATE).

import sqlite3 from 'sqlite3';

export type Param = string | number | bigint | Buffer | null;

export interface RunResult {
  readonly changes: number;
  readonly lastID: number;
}

/** Statements kept prepared per connection (the ones a long-lived process runs again and again:
 * a server's holds, the review page's queries). */
const KEPT = 64;

/** What run may keep prepared: changes that return no rows (they finish in one step). */
const KEEPABLE_RUN = /^\s*(INSERT|UPDATE|DELETE|REPLACE)\b(?![\s\S]*\bRETURNING\b)/i;

export class Db {
  readonly #db: sqlite3.Database;
  /** Prepared statements by their SQL, oldest use first. */
  readonly #kept = new Map<string, Promise<sqlite3.Statement>>();
  #closing = false;

  private constructor(db: sqlite3.Database) {
    this.#db = db;
  }

  /** Opens the database file; creates it only when `create` is set. */
  static open(path: string, opts: { readonly readonly?: boolean; readonly busyMs?: number; readonly create?: boolean } = {}): Promise<Db> {
    const mode = opts.readonly ? sqlite3.OPEN_READONLY : opts.create === true ? sqlite3.OPEN_READWRITE | sqlite3.OPEN_CREATE : sqlite3.OPEN_READWRITE;
    return new Promise((resolve, reject) => {
      const raw = new sqlite3.Database(path, mode, (err) => {
        if (err) {
          reject(err);
          return;
        }
        raw.configure('busyTimeout', opts.busyMs ?? 30_000);
        resolve(new Db(raw));
      });
    });
  }

  // run, get and all reuse the statement prepared for the same SQL the last time: node-sqlite3's
  // Database#run and friends prepare, step and finalize a statement of their own on every call,
  // three trips to its thread and a parse of the SQL. What a kept statement must not do is stay in
  // the middle of a query (it would pin a read snapshot of the WAL, or keep a write open): run and
  // all reset it before they step it and step it to its end; get resets it after its row (and
  // before, when there is nothing to bind: node-sqlite3 then steps on from where it stands). A
  // statement that returns rows is not kept for run (run steps it once), as before.

  run(sql: string, params: readonly Param[] = []): Promise<RunResult> {
    if (!KEEPABLE_RUN.test(sql)) return this.#runOnce(sql, params);
    return this.#with(sql, (st, done) =>
      st.run(params, (err: Error | null) => done(err, () => ({ changes: (st as unknown as sqlite3.RunResult).changes, lastID: (st as unknown as sqlite3.RunResult).lastID }))),
    );
  }

  get<T>(sql: string, params: readonly Param[] = []): Promise<T | undefined> {
    return this.#with(sql, (st, done) => {
      if (params.length === 0) st.reset();
      st.get(params, (err: Error | null, row: T | undefined) => done(err, () => row));
      st.reset();
    });
  }

  all<T>(sql: string, params: readonly Param[] = []): Promise<T[]> {
    return this.#with(sql, (st, done) => st.all(params, (err: Error | null, rows: T[]) => done(err, () => rows)));
  }

  /** Database#run as it was: a statement of its own, finalized after (for SQL that may return rows). */
  #runOnce(sql: string, params: readonly Param[]): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.#db.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastID: this.lastID });
      });
    });
  }

  /** Runs `use` on the kept statement for `sql` once it is prepared; `use` calls `done` with the
   * outcome. A statement that failed to prepare or to run is dropped: the next call prepares afresh. */
  async #with<T>(sql: string, use: (st: sqlite3.Statement, done: (err: Error | null, value: () => T) => void) => void): Promise<T> {
    const st = await this.#statement(sql);
    return new Promise<T>((resolve, reject) => {
      use(st, (err, value) => {
        if (err) {
          this.#drop(sql);
          reject(err);
        } else resolve(value());
      });
    });
  }

  /** The kept statement for `sql`, prepared now when there is none (the least recently used one is
   * finalized when more than KEPT are kept). A prepare that fails rejects, and is not kept. */
  #statement(sql: string): Promise<sqlite3.Statement> {
    if (this.#closing) return Promise.reject(new Error('the store is closed'));
    const kept = this.#kept.get(sql);
    if (kept !== undefined) {
      this.#kept.delete(sql);
      this.#kept.set(sql, kept);
      return kept;
    }
    const prepared = new Promise<sqlite3.Statement>((resolve, reject) => {
      // node-sqlite3 drops the calls queued on a statement whose prepare failed without calling
      // them back: nothing is queued on one before its prepare has succeeded.
      const st = this.#db.prepare(sql, (err: Error | null) => (err ? reject(err) : resolve(st)));
    });
    prepared.catch(() => {
      if (this.#kept.get(sql) === prepared) this.#kept.delete(sql);
    });
    this.#kept.set(sql, prepared);
    if (this.#kept.size > KEPT) {
      const [oldest, old] = this.#kept.entries().next().value as [string, Promise<sqlite3.Statement>];
      this.#kept.delete(oldest);
      void old.then(finalize, () => undefined);
    }
    return prepared;
  }

  /** A statement that failed is prepared afresh next time. */
  #drop(sql: string): void {
    const kept = this.#kept.get(sql);
    if (kept === undefined) return;
    this.#kept.delete(sql);
    void kept.then(finalize, () => undefined);
  }

  exec(sql: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#db.exec(sql, (err: Error | null) => (err ? reject(err) : resolve()));
    });
  }

  /** Runs `fn` inside BEGIN IMMEDIATE … COMMIT, rolling back on any error. Transactions on one
   * connection take turns: the review page serves requests concurrently over one store, and a
   * second BEGIN inside the first one's transaction would fail (or its statements join the other's).
   * `whileCommitting` gets the outcome as soon as the COMMIT is on its way (its fsync under way):
   * work done there overlaps the wait, and must not count on the outcome being durable yet. */
  tx<T>(fn: () => Promise<T>, whileCommitting?: (out: T) => void): Promise<T> {
    const run = async (): Promise<T> => {
      await this.exec('BEGIN IMMEDIATE');
      try {
        const out = await fn();
        const commit = this.exec('COMMIT');
        try {
          whileCommitting?.(out);
        } catch {
          /* the caller's own business: the commit goes on */
        }
        await commit;
        return out;
      } catch (err) {
        await this.exec('ROLLBACK').catch(() => undefined);
        throw err;
      }
    };
    const turn = this.#txTail.then(run, run);
    this.#txTail = turn.catch(() => undefined);
    return turn;
  }

  #txTail: Promise<unknown> = Promise.resolve();

  /** A statement prepared once and run many times (bulk import). */
  prepare(sql: string): Promise<sqlite3.Statement> {
    return new Promise((resolve, reject) => {
      const st = this.#db.prepare(sql, (err: Error | null) => (err ? reject(err) : resolve(st)));
    });
  }

  /** Finalizes the kept statements (SQLite closes no connection with one open), then closes. A
   * call made from now on is refused. */
  async close(): Promise<void> {
    this.#closing = true;
    const kept = [...this.#kept.values()];
    this.#kept.clear();
    await Promise.all(kept.map((p) => p.then(finalize, () => undefined)));
    return new Promise((resolve, reject) => this.#db.close((err) => (err ? reject(err) : resolve())));
  }
}

export function stepRun(st: sqlite3.Statement, params: readonly Param[]): Promise<number> {
  return new Promise((resolve, reject) => {
    st.run(params, function (this: sqlite3.RunResult, err: Error | null) {
      if (err) reject(err);
      else resolve(this.changes);
    });
  });
}

export function finalize(st: sqlite3.Statement): Promise<void> {
  return new Promise((resolve) => st.finalize(() => resolve()));
}
