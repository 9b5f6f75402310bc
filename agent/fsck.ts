// `vouch fsck`: Maildir hygiene and store checks. (Extended in the issue "Nothing lost".)

import type { Config } from './config.js';
import { finishInterrupted } from './release.js';
import type { Store } from './store.js';

export async function fsck(store: Store, config: Config, now: number): Promise<{ ok: boolean; summary: string }> {
  const finished = await finishInterrupted(store, config, now);
  const integrity = await store.integrityCheck();
  const ok = integrity.length === 1 && integrity[0] === 'ok';
  return { ok, summary: `store ${ok ? 'ok' : `damaged: ${integrity.slice(0, 3).join('; ')}`}; ${finished} interrupted release(s) finished` };
}
