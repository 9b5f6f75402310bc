// The stores `vouch serve` keeps open between deliveries: one connection per home, lent to one
// delivery at a time (the next one to that home waits its turn in this process instead of in
// SQLite's busy handler, which sleeps), the least recently used closed first beyond a bound.
// Deliveries to different homes run side by side; other processes (the CLI, the review page)
// still meet this one through SQLite's locks, as they meet `vouch deliver`.

import { statSync } from 'node:fs';
import type { StoreSource } from '../deliver/deliver.js';
import type { HomePaths } from '../home/home.js';
import type { Store } from '../store/store.js';

interface Entry {
  /** The open connection, when there is one, and the file it was opened on: a store replaced or
   * removed meanwhile (by the user, a restore) is never written through a connection to the old file. */
  store: Store | undefined;
  file: string;
  /** Lent to a delivery now. */
  busy: boolean;
  /** Deliveries waiting for their turn. */
  readonly waiting: (() => void)[];
}

export class StorePool implements StoreSource {
  readonly #max: number;
  /** By home folder, least recently used first (a Map keeps insertion order). */
  readonly #homes = new Map<string, Entry>();
  #closed = false;

  /** `max`: connections kept open across all homes while idle. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Connections open now (idle and lent). */
  get size(): number {
    let n = 0;
    for (const e of this.#homes.values()) if (e.store !== undefined) n += 1;
    return n;
  }

  async open(paths: HomePaths): Promise<Store> {
    let e = this.#homes.get(paths.dir);
    if (e === undefined) {
      e = { store: undefined, file: '', busy: false, waiting: [] };
      this.#homes.set(paths.dir, e);
    }
    while (e.busy) await new Promise<void>((resolve) => (e as Entry).waiting.push(resolve));
    e.busy = true;
    // Most recently used: to the end.
    this.#homes.delete(paths.dir);
    this.#homes.set(paths.dir, e);
    try {
      const file = identity(paths.db);
      if (e.store !== undefined && e.file === file) return e.store;
      if (e.store !== undefined) {
        const old = e.store;
        e.store = undefined;
        await old.close().catch(() => undefined);
      }
      const { Store } = await import('../store/store.js');
      e.store = await Store.open(paths.db);
      e.file = identity(paths.db);
      return e.store;
    } catch (err) {
      this.#release(paths.dir, e);
      throw err;
    }
  }

  async done(store: Store): Promise<void> {
    const e = this.#homes.get(store.home);
    if (e === undefined || e.store !== store) {
      await store.close().catch(() => undefined);
      return;
    }
    if (this.#closed) {
      e.store = undefined;
      await store.close().catch(() => undefined);
    }
    this.#release(store.home, e);
    await this.#trim();
  }

  #release(home: string, e: Entry): void {
    e.busy = false;
    const next = e.waiting.shift();
    if (next !== undefined) next();
    else if (e.store === undefined) this.#homes.delete(home);
  }

  /** Closes the least recently used idle connections beyond the bound. */
  async #trim(): Promise<void> {
    let open = this.size;
    for (const [home, e] of this.#homes) {
      if (open <= this.#max) break;
      if (e.busy || e.store === undefined) continue;
      const s = e.store;
      e.store = undefined;
      this.#homes.delete(home);
      open -= 1;
      await s.close().catch(() => undefined);
    }
  }

  /** Closes every idle connection (SIGHUP: the next delivery opens each store afresh). */
  async closeIdle(): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const [home, e] of this.#homes) {
      if (e.busy || e.store === undefined) continue;
      closing.push(e.store.close().catch(() => undefined));
      e.store = undefined;
      this.#homes.delete(home);
    }
    await Promise.all(closing);
  }

  /** Closes everything: idle connections now, lent ones as they come back. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.closeIdle();
  }
}

/** The device and inode of a file ('' when it is not there). */
function identity(path: string): string {
  try {
    const st = statSync(path, { bigint: true });
    return `${st.dev}:${st.ino}`;
  } catch {
    return '';
  }
}
