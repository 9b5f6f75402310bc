// Releasing held mail into the Maildir: the one code path behind `vouch pending release`, the web
// page and a confirmation reply. Idempotent and crash-safe: the Maildir name is fixed in the store
// first, so a retry finds the file already there instead of writing it twice.

import type { Config } from '../home/config.js';
import { deliver, hasMessage, uniqueName } from '../maildir/maildir.js';
import { failpoint } from '../failure/failpoint.js';
import type { GoodChange, Store } from '../store/store.js';

export interface ReleaseResult {
  readonly released: readonly string[];
  /** Ids that were not held (unknown, deleted, or already released). */
  readonly skipped: readonly string[];
  /** What each release did to its client's network (marked good; for an undo). */
  readonly clients: readonly { readonly id: string; readonly change: GoodChange }[];
}

export async function release(store: Store, config: Config, ids: readonly string[], now: number = Date.now()): Promise<ReleaseResult> {
  const released: string[] = [];
  const skipped: string[] = [];
  const clients: { id: string; change: GoodChange }[] = [];
  for (const id of ids) {
    const name = await store.beginRelease(id, () => uniqueName(now));
    if (name === undefined) {
      skipped.push(id);
      continue;
    }
    const change = await releaseOne(store, config, id, name, now);
    if (change !== undefined) clients.push({ id, change });
    released.push(id);
  }
  return { released, skipped, clients };
}

async function releaseOne(store: Store, config: Config, id: string, name: string, now: number): Promise<GoodChange | undefined> {
  let change: GoodChange | undefined;
  const dir = config.delivery.maildir;
  if (!(await hasMessage(dir, name))) {
    const held = await store.get(id);
    const raw = await store.raw(id);
    if (!held || !raw) {
      // Another process (a concurrent release, expire or fsck) finished this very release between
      // our look into the Maildir and our read of the body: it is delivered, nothing left to do.
      if (held?.state === 'released' || (await store.get(id))?.state === 'released') return undefined;
      throw new Error(`held message ${id} has no stored bytes`);
    }
    await deliver(dir, name, [Buffer.from(held.rpline), Buffer.from(held.dtline), raw]);
    // Released mail is wanted mail: its client is never blocklisted.
    const client = held.signals['client'] as { ip?: unknown } | undefined;
    if (typeof client?.ip === 'string') change = await store.markGoodClient(client.ip, config.blocklist.ipv6_prefix, now);
  }
  failpoint('release:after-maildir');
  // Released, by a confirmation or by the user: the classifier learns it as ham.
  await store.finishRelease(id, now, config.classifier.enabled ? { verdict: 'ham', maxBytes: config.classifier.max_size } : undefined);
  return change;
}

/** Finishes releases a crash interrupted (for `vouch fsck` and every release run). */
export async function finishInterrupted(store: Store, config: Config, now: number = Date.now()): Promise<number> {
  const ids = await store.releasing();
  for (const id of ids) {
    const held = await store.get(id);
    if (held?.maildirName) await releaseOne(store, config, id, held.maildirName, now);
  }
  return ids.length;
}
