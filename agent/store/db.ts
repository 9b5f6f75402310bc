// A small promise face on the sqlite3 package: one connection, WAL, a busy timeout, FULL sync,
// and a transaction helper that takes the write lock up front (BEGIN IMMEDIATE).

import sqlite3 from 'sqlite3';

export type Param = string | number | bigint | Buffer | null;

export interface RunResult {
  readonly changes: number;
  readonly lastID: number;
}

export class Db {
  readonly #db: sqlite3.Database;

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

  run(sql: string, params: readonly Param[] = []): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      this.#db.run(sql, params, function (this: sqlite3.RunResult, err: Error | null) {
        if (err) reject(err);
        else resolve({ changes: this.changes, lastID: this.lastID });
      });
    });
  }

  get<T>(sql: string, params: readonly Param[] = []): Promise<T | undefined> {
    return new Promise((resolve, reject) => {
      this.#db.get(sql, params, (err: Error | null, row: T | undefined) => (err ? reject(err) : resolve(row)));
    });
  }

  all<T>(sql: string, params: readonly Param[] = []): Promise<T[]> {
    return new Promise((resolve, reject) => {
      this.#db.all(sql, params, (err: Error | null, rows: T[]) => (err ? reject(err) : resolve(rows)));
    });
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

  close(): Promise<void> {
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
