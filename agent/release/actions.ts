// The user's decisions on held mail, shared by the CLI and the web page: release (and whitelist),
// delete (and blacklist), and expiry.

import { exactPatterns, type Pattern } from '../mail/address.js';
import type { Config } from '../home/config.js';
import { finishInterrupted, release } from './release.js';
import type { Held, Store } from '../store/store.js';
import { recordBadClients } from './blocklist.js';

export type HeldAction = 'release' | 'release-whitelist' | 'delete' | 'delete-blacklist';

export interface ActionResult {
  readonly done: readonly string[];
  readonly missing: readonly string[];
  readonly listed: number;
  readonly summary: string;
}

/** The exact list entries for the senders of held mail: an address taken from mail is listed as
 * itself, never parsed as a pattern (a sender `*@example.com` must not list all of example.com). */
function senderPatterns(held: readonly Held[]): Pattern[] {
  return exactPatterns(held.map((h) => h.senderKey));
}

export async function decideHeld(store: Store, config: Config, ids: readonly string[], action: HeldAction, now: number = Date.now()): Promise<ActionResult> {
  const heldBefore = (await Promise.all(ids.map((id) => store.get(id)))).filter((h): h is Held => h !== undefined && (h.state === 'held' || h.state === 'releasing'));
  let done: readonly string[];
  let listed = 0;
  if (action === 'release' || action === 'release-whitelist') {
    if (action === 'release-whitelist') listed = await store.addPatterns('white', senderPatterns(heldBefore), now);
    done = (await release(store, config, ids, now)).released;
  } else {
    const deleted = await store.delete(ids, now);
    done = deleted.map((h) => h.id);
    if (action === 'delete-blacklist') {
      listed = await store.addPatterns('black', senderPatterns(deleted), now);
      await recordBadClients(store, config, deleted, now, 'deleted with blacklist');
    }
  }
  const missing = ids.filter((id) => !done.includes(id));
  const verb = action.startsWith('release') ? 'released' : 'deleted';
  const extra = action === 'release-whitelist' ? `, ${listed} sender(s) whitelisted` : action === 'delete-blacklist' ? `, ${listed} sender(s) blacklisted` : '';
  const miss = missing.length > 0 ? `; not held: ${missing.join(' ')}` : '';
  return { done, missing, listed, summary: `${done.length} ${verb}${extra}${miss}` };
}

/** Removes held mail past its lifetime, forgets old journals and empties the store's WAL; never
 * writes to a sender. The clients of expired mail whose sender was asked and never answered, or
 * that was held as forged or blocklisted, go on the local blocklist (mail held silently for other
 * reasons, a mailing list's among them, does not: nobody was asked). */
export async function expire(store: Store, config: Config, now: number): Promise<string> {
  await finishInterrupted(store, config, now);
  const old = await store.heldBefore(now - config.pending.lifetime);
  const removed = await store.delete(old, now, 'expired');
  const bad = removed.filter((h) => h.challenge === 'sent' || h.suspect);
  const listed = await recordBadClients(store, config, bad, now, 'held mail expired unconfirmed');
  await store.prune(now - Math.max(config.pending.lifetime, config.challenge.rate_window, 7 * 86_400_000));
  const forgotten = await store.forgetOutgoing(now - config.send.reply_lifetime);
  await store.pruneBlocks(now - config.blocklist.max_period);
  // Where a checkpoint is cheap: from cron, not on any delivery's way. The WAL's file goes back to
  // nothing, however large a burst of mail made it.
  await store.checkpoint();
  const extra = [...(listed > 0 ? [`${listed} client(s) blocklisted`] : []), ...(forgotten > 0 ? [`${forgotten} sent Message-ID(s) forgotten`] : [])];
  return `${removed.length} expired${extra.map((e) => `, ${e}`).join('')}`;
}
