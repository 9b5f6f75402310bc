// The checked config of each home `vouch serve` delivers to, kept between deliveries: a delivery
// then costs one stat of config.toml instead of reading config.toml and config.cache and parsing
// the JSON (loadConfig, as `vouch deliver` does at every start). An edit is still seen by the next
// delivery: a kept config is believed only while config.toml has the device, inode, size and
// modification and change times (to the nanosecond) it was read with, and only when that stat was
// taken at least RACY_MS after the file last changed (a file written twice within one tick of the
// file system's clock keeps its times; until RACY_MS have passed, the file is read again each time).

import { statSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, type Config } from '../home/config.js';

/** Longer than any file system's timestamp granularity (FAT's is 2 s). */
const RACY_MS = 3000;

interface Entry {
  /** config.toml's identity when it was read, and the HOME `~` stood for. */
  readonly stamp: string;
  readonly config: Config;
}

export class ConfigCache {
  readonly #max: number;
  /** By home folder, least recently used first. */
  readonly #homes = new Map<string, Entry>();
  readonly #now: () => number;

  /** `max`: homes whose config is kept; `now`: the wall clock (the racy check compares it with
   * the file's times). */
  constructor(max: number, now: () => number = Date.now) {
    this.#max = max;
    this.#now = now;
  }

  /** loadConfig(home, env), from memory when config.toml is the file it was read from. */
  load = (home: string, env: NodeJS.ProcessEnv | undefined): Config => {
    const before = stamp(home, env, this.#now());
    const kept = this.#homes.get(home);
    if (kept !== undefined && before !== undefined && before.settled && kept.stamp === before.key) {
      this.#homes.delete(home);
      this.#homes.set(home, kept);
      return kept.config;
    }
    this.#homes.delete(home);
    const config = loadConfig(home, env);
    // Kept only when the file did not change while it was read, and is old enough to be believed.
    const after = stamp(home, env, this.#now());
    if (before !== undefined && after !== undefined && after.key === before.key && before.settled) {
      this.#homes.set(home, { stamp: after.key, config });
      for (const h of this.#homes.keys()) {
        if (this.#homes.size <= this.#max) break;
        this.#homes.delete(h);
      }
    }
    return config;
  };

  /** Forgets every config (SIGHUP). */
  clear(): void {
    this.#homes.clear();
  }

  get size(): number {
    return this.#homes.size;
  }
}

/** config.toml's identity, and whether its last change is far enough in the past to trust it. */
function stamp(home: string, env: NodeJS.ProcessEnv | undefined, now: number): { key: string; settled: boolean } | undefined {
  try {
    const st = statSync(join(home, 'config.toml'), { bigint: true });
    const changed = Number((st.mtimeNs > st.ctimeNs ? st.mtimeNs : st.ctimeNs) / 1_000_000n);
    return {
      key: `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}:${env?.['HOME'] ?? ''}`,
      settled: now - changed >= RACY_MS,
    };
  } catch {
    return undefined;
  }
}
