// The user's decisions on held mail, shared by the CLI and the web page: release (and whitelist),
// delete (and blacklist), their undo, and expiry. Every decision is recorded with what it did
// (messages trashed or released, list entries made or displaced) so an undo reverses all of it.

import { readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { domainOf, exactPattern, exactPatterns, headerAddress, parsePattern, type Pattern } from '../mail/address.js';
import type { Config } from '../home/config.js';
import { finishInterrupted, release } from './release.js';
import type { BlockChange, GoodChange, Held, ListChange, ListName, Store } from '../store/store.js';
import { foldWhitelistedClients, listBadClients, recordBadClients } from './blocklist.js';

export type HeldAction = 'release' | 'release-whitelist' | 'delete' | 'delete-blacklist';

/** Which address of a message its sender is listed under: the envelope sender (the default), the
 * From header's address, or the From address's whole domain. */
export type ListAs = 'sender' | 'from' | 'domain';

export interface ActionResult {
  readonly done: readonly string[];
  readonly missing: readonly string[];
  readonly listed: number;
  /** The patterns this action put on a list. */
  readonly patterns: readonly string[];
  readonly summary: string;
  /** The number the undo of this action goes by (undefined when it did nothing). */
  readonly undo: number | undefined;
}

/** What an action did, as stored for its undo. */
interface UndoRecord {
  readonly trashed: readonly string[];
  readonly released: readonly { readonly id: string; readonly name: string }[];
  readonly lists: readonly ListChange[];
  /** Client networks the action put on (or further onto) the local blocklist. */
  readonly blocks?: readonly BlockChange[];
  /** Messages the action brought back from the trash (its undo deletes them again). */
  readonly restored?: readonly string[];
  /** Client networks released mail marked good, by message (undone with the message's release). */
  readonly good?: readonly { readonly id: string; readonly change: GoodChange }[];
}

/** The list entries for the senders of `held`: exact addresses (never parsed as patterns), or the
 * From domain when the user chose it. Messages without such an address are skipped. */
export function senderPatterns(held: readonly Held[], as: ListAs = 'sender'): Pattern[] {
  if (as === 'sender') return exactPatterns(held.filter((h) => h.sender !== '').map((h) => h.senderKey));
  const out = new Map<string, Pattern>();
  for (const h of held) {
    try {
      const from = headerAddress(h.fromHeader);
      if (from === undefined) continue;
      const p = as === 'domain' ? parsePattern(`@${domainOf(from)}`) : exactPattern(from);
      out.set(p.key, p);
    } catch {
      /* the null sender and broken addresses cannot be listed */
    }
  }
  return [...out.values()];
}

export async function decideHeld(
  store: Store,
  config: Config,
  ids: readonly string[],
  action: HeldAction,
  now: number = Date.now(),
  opts: { readonly listAs?: ListAs } = {},
): Promise<ActionResult> {
  let done: readonly string[];
  let change: ListChange = { added: [], displaced: [] };
  const released: { id: string; name: string }[] = [];
  let good: { id: string; change: GoodChange }[] = [];
  const trashed: string[] = [];
  let blocks: BlockChange[] = [];
  const origin = (source: 'release' | 'block', list: readonly Held[]) => ({ source, note: list.length === 1 ? (list[0]?.id ?? '') : `${list.length} messages` });
  if (action === 'release' || action === 'release-whitelist') {
    const heldBefore = action === 'release-whitelist' ? (await store.getMany(ids)).filter((h) => h.state === 'held' || h.state === 'releasing') : [];
    if (action === 'release-whitelist') change = await store.changeList('white', senderPatterns(heldBefore, opts.listAs), now, origin('release', heldBefore));
    const r = await release(store, config, ids, now);
    done = r.released;
    good = [...r.clients];
    for (const h of await store.getMany(done)) if (h.maildirName) released.push({ id: h.id, name: h.maildirName });
  } else {
    // Deleted with "blacklist": the classifier learns it as spam. A plain delete teaches nothing.
    const learn = action === 'delete-blacklist' && config.classifier.enabled ? { verdict: 'spam' as const, maxBytes: config.classifier.max_size } : undefined;
    const deleted = await store.delete(ids, now, 'deleted', learn);
    done = deleted.map((h) => h.id);
    trashed.push(...done);
    if (action === 'delete-blacklist') {
      change = await store.changeList('black', senderPatterns(deleted, opts.listAs), now, origin('block', deleted));
      await foldWhitelistedClients(store, config, now);
      blocks = await listBadClients(store, config, deleted, now, 'deleted with blacklist');
    }
  }
  const doneSet = new Set(done);
  const missing = ids.filter((id) => !doneSet.has(id));
  const verb = action.startsWith('release') ? 'released' : 'deleted';
  const patterns = change.added.map((e) => e.pattern);
  const listed = patterns.length;
  const names = patterns.length === 0 ? '' : `: ${patterns.slice(0, 5).join(', ')}${patterns.length > 5 ? ` and ${patterns.length - 5} more` : ''}`;
  const extra = action === 'release-whitelist' ? `, ${listed} sender(s) whitelisted${names}` : action === 'delete-blacklist' ? `, ${listed} sender(s) blacklisted${names}` : '';
  const nets = [...new Set(blocks.map((b) => b.net))];
  const blocked = nets.length > 0 ? `, ${nets.length} client network(s) put on the local blocklist: ${nets.slice(0, 3).join(', ')}${nets.length > 3 ? ` and ${nets.length - 3} more` : ''}` : '';
  const miss = missing.length > 0 ? `; not held: ${missing.join(' ')}` : '';
  const summary = `${done.length} ${verb}${extra}${blocked}${miss}`;
  const record: UndoRecord = { trashed, released, lists: change.added.length > 0 || change.displaced.length > 0 ? [change] : [], ...(blocks.length > 0 ? { blocks } : {}), ...(good.length > 0 ? { good } : {}) };
  const undo = done.length > 0 || listed > 0 ? await store.recordAction(now, summary, record) : undefined;
  return { done, missing, listed, patterns, summary, undo };
}

/** Adds what the user typed to a list, recorded for an undo. */
export async function addToList(store: Store, list: ListName, patterns: readonly Pattern[], now: number): Promise<{ change: ListChange; undo: number | undefined }> {
  const change = await store.changeList(list, patterns, now, { source: 'hand' });
  const undo = change.added.length > 0 ? await store.recordAction(now, `${change.added.length} added to the ${list}list`, { trashed: [], released: [], lists: [change] } satisfies UndoRecord) : undefined;
  return { change, undo };
}

/** Removes what the user chose from a list, recorded for an undo (which puts the entries back
 * with their provenance). */
export async function removeFromList(store: Store, list: ListName, patterns: readonly Pattern[], now: number): Promise<{ removed: number; undo: number | undefined }> {
  const taken = await store.takeFromList(list, patterns);
  const undo = taken.length > 0 ? await store.recordAction(now, `${taken.length} removed from the ${list}list`, { trashed: [], released: [], lists: [{ added: [], displaced: taken }] } satisfies UndoRecord) : undefined;
  return { removed: taken.length, undo };
}

/** Brings deleted mail back from the trash, recorded for an undo (which puts it back there). */
export async function restoreFromTrash(store: Store, ids: readonly string[], now: number): Promise<{ restored: number; undo: number | undefined }> {
  const done = (await store.restore(ids, now)).map((h) => h.id);
  const undo = done.length > 0 ? await store.recordAction(now, `${done.length} restored`, { trashed: [], released: [], lists: [], restored: done } satisfies UndoRecord) : undefined;
  return { restored: done.length, undo };
}

/** Reverses a recorded action: trashed mail is restored, released mail that is still unread in
 * the Maildir's new/ comes back to the held mail, and list entries it made leave (the ones they
 * displaced return). Runs once. */
export async function undoAction(store: Store, config: Config, id: number, now: number): Promise<string> {
  const rec = await store.action(id);
  if (!rec) return 'There is nothing to undo.';
  if (!(await store.markUndone(id, now))) return 'That was undone already.';
  const undo = rec.undo as UndoRecord;
  const restored = (await store.restore(undo.trashed ?? [], now)).length;
  const retrashed = (await store.delete(undo.restored ?? [], now)).length;
  let back = 0;
  let kept = 0;
  let relisted = 0;
  for (const r of undo.released ?? []) {
    if (await unrelease(store, config, r.id, r.name, now)) {
      back += 1;
      // Taken back unread: its client is no longer vouched for by this release.
      for (const g of (undo.good ?? []).filter((x) => x.id === r.id)) if ((await store.revertGoodClient(g.change)) && g.change.unlisted !== undefined) relisted += 1;
    } else kept += 1;
  }
  let unlisted = 0;
  let returned = 0;
  for (const change of [...(undo.lists ?? [])].reverse()) {
    const r = await store.revertList(change);
    unlisted += r.removed;
    returned += r.returned;
  }
  // Newest first: a network listed twice by one action goes back step by step.
  let unblocked = 0;
  for (const b of [...(undo.blocks ?? [])].reverse()) if (await store.revertBadClient(b)) unblocked += 1;
  const parts: string[] = [];
  if (restored > 0) parts.push(`${restored} restored`);
  if (retrashed > 0) parts.push(`${retrashed} back in the trash`);
  if (back > 0) parts.push(`${back} back in the held mail`);
  if (kept > 0) parts.push(`${kept} already read in your mailbox, left there`);
  if (unlisted > 0) parts.push(`${unlisted} list entr${unlisted === 1 ? 'y' : 'ies'} removed`);
  if (returned > 0) parts.push(`${returned} list entr${returned === 1 ? 'y' : 'ies'} back`);
  if (relisted > 0) parts.push(`${relisted} client network(s) back on the local blocklist`);
  if (unblocked > 0) parts.push(`${unblocked} local blocklist entr${unblocked === 1 ? 'y' : 'ies'} taken back`);
  return `Undone: ${parts.length > 0 ? parts.join(', ') : 'nothing was left to change'}`;
}

/** Takes a released message back out of the Maildir when it is still in new/ (not yet seen by a
 * mail program) and its bytes are the held ones with the two lines release added. */
async function unrelease(store: Store, config: Config, id: string, name: string, now: number): Promise<boolean> {
  const held = await store.get(id);
  if (!held || held.state !== 'released') return false;
  const path = join(config.delivery.maildir, 'new', name);
  let file: Buffer;
  try {
    file = readFileSync(path);
  } catch {
    return false;
  }
  const head = Buffer.from(held.rpline + held.dtline);
  if (!file.subarray(0, head.length).equals(head)) return false;
  if (!(await store.unrelease(id, file.subarray(head.length), now))) return false;
  try {
    unlinkSync(path);
  } catch {
    /* a mail program took it meanwhile: it is held again and delivered; nothing is lost */
  }
  return true;
}

/** Removes held mail past its lifetime, empties the trash of mail deleted more than pending.trash
 * ago, forgets old journals and empties the store's WAL; never
 * writes to a sender. The clients of expired mail whose sender was asked and never answered, or
 * that was held as forged or blocklisted, go on the local blocklist (mail held silently for other
 * reasons, a mailing list's among them, does not: nobody was asked). */
export async function expire(store: Store, config: Config, now: number): Promise<string> {
  await finishInterrupted(store, config, now);
  const old = await store.heldBefore(now - config.pending.lifetime);
  // Expired with its confirmation request unanswered: spam, when so configured. Mail held silently
  // was never asked for, and says nothing by expiring.
  const c = config.classifier;
  const learn = c.enabled && c.learn_expired ? { verdict: 'spam' as const, maxBytes: c.max_size, only: (h: Held) => h.challenge === 'sent' } : undefined;
  const removed = await store.delete(old, now, 'expired', learn);
  const bad = removed.filter((h) => h.challenge === 'sent' || h.suspect);
  await foldWhitelistedClients(store, config, now);
  const listed = await recordBadClients(store, config, bad, now, 'held mail expired unconfirmed');
  const emptied = await store.emptyTrash(now - config.pending.trash);
  await store.pruneActions(now - config.pending.trash);
  await store.prune(now - Math.max(config.pending.lifetime, config.pending.trash, config.challenge.rate_window, 7 * 86_400_000));
  const forgotten = await store.forgetOutgoing(now - config.send.reply_lifetime);
  await store.pruneBlocks(now - config.blocklist.max_period);
  // Where a checkpoint is cheap: from cron, not on any delivery's way. The WAL's file goes back to
  // nothing, however large a burst of mail made it.
  await store.checkpoint();
  const extra = [...(emptied > 0 ? [`${emptied} emptied from the trash`] : []), ...(listed > 0 ? [`${listed} client(s) blocklisted`] : []), ...(forgotten > 0 ? [`${forgotten} sent Message-ID(s) forgotten`] : [])];
  return `${removed.length} expired${extra.map((e) => `, ${e}`).join('')}`;
}
