// How big the stress harnesses run: small under `npm test` (every path, a CI-sized budget), full
// under `npm run test:stress` (VOUCH_STRESS=1). One seed per run, printed, so a failure can be replayed.

export const STRESS = process.env['VOUCH_STRESS'] === '1';

/** `small` under npm test, `full` under npm run test:stress. */
export function size<T>(small: T, full: T): T {
  return STRESS ? full : small;
}

/** The run's seed: VOUCH_SEED when given (to replay a failure), else a fresh one. */
export const SEED = Number(process.env['VOUCH_SEED'] ?? Math.floor(Math.random() * 2 ** 31));

/** A small, seedable PRNG (mulberry32): the harnesses' choices replay from the seed. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs `fn` over `items` with at most `width` at once. */
export async function pool<T>(items: readonly T[], width: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}
