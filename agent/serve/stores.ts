// The stores `vouch serve` keeps open between deliveries: idle connections by home, the least
// recently used closed first beyond a bound. A delivery borrows a connection for itself, as a
// `vouch deliver` process opens its own, so concurrent deliveries to one home never share a
// transaction: SQLite's locks order them, exactly as between processes.

import { statSync } from 'node:fs';
import type { StoreSource } from '../deliver/deliver.js';
import type { HomePaths } from '../home/home.js';
import type { Store } from '../store/store.js';

/** An idle connection and the file it was opened on (a store replaced or removed meanwhile, by the
 * user or a restore, must not be written through a connection to the old file). */
interface Idle {
  readonly store: Store;
  readonly file: string;
}

/** Idle connections kept per home at most: more only wait for a burst that is over. */
const PER_HOME = 4;

export class StorePool implements StoreSource {
  readonly #max: number;
  /** By home folder, least recently used first (a Map keeps insertion order). */
  readonly #idle = new Map<string, Idle[]>();
  /** The file identity of each borrowed connection, for its return. */
  readonly #lent = new Map<Store, string>();
  #count = 0;
  #closed = false;

  /** `max`: idle connections kept open across all homes. */
  constructor(max: number) {
    this.#max = max;
  }

  /** How many connections are open now (idle and lent). */
  get size(): number {
    return this.#count + this.#lent.size;
  }

  async open(paths: HomePaths): Promise<Store> {
    const file = identity(paths.db);
    const list = this.#idle.get(paths.dir);
    while (list !== undefined && list.length > 0) {
      const idle = list.pop() as Idle;
      this.#count -= 1;
      if (list.length === 0) this.#idle.delete(paths.dir);
      if (idle.file === file) {
        this.#lent.set(idle.store, file);
        return idle.store;
      }
      void idle.store.close().catch(() => undefined);
    }
    const { Store } = await import('../store/store.js');
    const store = await Store.open(paths.db);
    this.#lent.set(store, identity(paths.db));
    return store;
  }

  async done(store: Store): Promise<void> {
    const file = this.#lent.get(store);
    this.#lent.delete(store);
    if (this.#closed || file === undefined) {
      await store.close().catch(() => undefined);
      return;
    }
    const list = this.#idle.get(store.home) ?? [];
    this.#idle.delete(store.home);
    if (list.length >= PER_HOME) {
      await store.close().catch(() => undefined);
    } else {
      list.push({ store, file });
      this.#count += 1;
    }
    this.#idle.set(store.home, list);
    while (this.#count > this.#max) await this.#evictOldest();
  }

  async #evictOldest(): Promise<void> {
    const first = this.#idle.entries().next();
    if (first.done === true) return;
    const [home, list] = first.value;
    const idle = list.shift();
    if (list.length === 0) this.#idle.delete(home);
    if (idle === undefined) return;
    this.#count -= 1;
    await idle.store.close().catch(() => undefined);
  }

  /** Closes every idle connection (SIGHUP: the next delivery opens each store afresh). */
  async closeIdle(): Promise<void> {
    const all = [...this.#idle.values()].flat();
    this.#idle.clear();
    this.#count = 0;
    await Promise.all(all.map((i) => i.store.close().catch(() => undefined)));
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
