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

export class Db {
  readonly #db: sqlite3.Database;
  /** Prepared statements by their SQL, oldest use first. */
  readonly #kept = new Map<string, sqlite3.Statement>();

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
  // three trips to its thread and a parse of the SQL. A kept statement is bound afresh each time
  // (binding resets it); get resets it after its row, so no kept statement stays in the middle of
  // a query (which would pin a read snapshot of the WAL).

  run(sql: string, params: readonly Param[] = []): Promise<RunResult> {
    const st = this.#statement(sql);
    return new Promise((resolve, reject) => {
      st.run(params, (err: Error | null) => {
        if (err) {
          this.#drop(sql, st);
          reject(err);
        } else resolve({ changes: (st as unknown as sqlite3.RunResult).changes, lastID: (st as unknown as sqlite3.RunResult).lastID });
      });
    });
  }

  get<T>(sql: string, params: readonly Param[] = []): Promise<T | undefined> {
    const st = this.#statement(sql);
    return new Promise((resolve, reject) => {
      st.get(params, (err: Error | null, row: T | undefined) => {
        if (err) {
          this.#drop(sql, st);
          reject(err);
        } else resolve(row);
      });
      st.reset();
    });
  }

  all<T>(sql: string, params: readonly Param[] = []): Promise<T[]> {
    const st = this.#statement(sql);
    return new Promise((resolve, reject) => {
      st.all(params, (err: Error | null, rows: T[]) => {
        if (err) {
          this.#drop(sql, st);
          reject(err);
        } else resolve(rows);
      });
    });
  }

  /** The kept statement for `sql`, prepared now when there is none; the least recently used one
   * is finalized when more than KEPT are kept. A statement that fails is dropped (see #drop). */
  #statement(sql: string): sqlite3.Statement {
    let st = this.#kept.get(sql);
    if (st !== undefined) {
      this.#kept.delete(sql);
      this.#kept.set(sql, st);
      return st;
    }
    st = this.#db.prepare(sql);
    // A statement that cannot be prepared fails the call that runs it (with the same error); the
    // event would otherwise be thrown as an uncaught error.
    st.on('error', () => undefined);
    this.#kept.set(sql, st);
    if (this.#kept.size > KEPT) {
      const [oldest, old] = this.#kept.entries().next().value as [string, sqlite3.Statement];
      this.#kept.delete(oldest);
      old.finalize();
    }
    return st;
  }

  /** A statement that failed is prepared afresh next time (it may not have prepared at all). */
  #drop(sql: string, st: sqlite3.Statement): void {
    if (this.#kept.get(sql) === st) this.#kept.delete(sql);
    st.finalize();
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

  /** Finalizes the kept statements (SQLite closes no connection with one open), then closes. */
  async close(): Promise<void> {
    const kept = [...this.#kept.values()];
    this.#kept.clear();
    await Promise.all(kept.map(finalize));
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
