// One delivery, from the envelope and the bytes to an outcome and a log line (deliverMessage), and
// `vouch deliver`'s edge around it: message on stdin, envelope from the environment, answer by exit
// code. `vouch serve` (agent/serve/) is the other edge: LMTP envelope in, one reply per recipient.
// Loads only what the path at hand needs: the whitelisted path never loads the MIME parser, the mail
// composer or the template engine.

import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { addressKey, bindingKey, domainOf, exactPattern, exactPatterns, lookupKeys, senderKeyOf, unwrapSrs } from '../mail/address.js';
import { messageIds, replyIds } from '../mail/msgid.js';
import { loadConfig, type Config } from '../home/config.js';
import { decide, needsReplyFact, type ReplyFact, type TagFact, type Verdict } from '../policy/decide.js';
import { detectMta, readEnvelope, type Envelope } from './envelope.js';
import { asTempFail, exitCode, TempFail, type Mta, type Outcome } from '../failure/failure.js';
import { failpoint } from '../failure/failpoint.js';
import { cleanText, firstAddress, readHeaders, type Headers } from '../mail/header.js';
import { HAM_SAMPLES, homeDir, homePaths, readSecret, type HomePaths } from '../home/home.js';
import { deliverOnce as deliverOnceHere, deliveryKey, type OnceJob } from '../store/journal.js';
import { readListMap, type MapAnswer } from '../store/listmap.js';
import { uniqueName } from '../maildir/maildir.js';
import { readInput, writeLine } from './stdio.js';
import { release } from '../release/release.js';
import type { HoldResult, Store } from '../store/store.js';
import { programWrote, suppression } from '../policy/suppress.js';
import type { ScreenInput, Screening } from '../auth/screen.js';
import { classifierOutcome, sampled, type ClassifierOutcome } from '../policy/classify.js';
import type { TransportSeams } from '../challenge/transport.js';
import type { ComposedChallenge } from '../challenge/challenge.js';

/** `vouch deliver`'s inputs: the home flag, the MTA named on the command line, the environment. */
export interface DeliverOptions {
  readonly home: string | undefined;
  readonly mta: Mta | undefined;
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => number;
  /** The process exits as soon as this delivery returns (`vouch deliver`): the store is left open
   * for the exit to close. Every change is committed (and in the WAL, fsynced) before it answers,
   * so closing would only checkpoint, which the next writer's automatic checkpoint does anyway. */
  readonly exiting?: boolean;
  /** Told the configured deadline before the delivery first waits on anything (the store, the
   * transport): until then it only makes blocking calls, which no timer could interrupt. */
  readonly onDeadline?: (ms: number) => void;
}

/** What a delivery did: the outcome for the exit code and the one log line. */
export interface Report {
  readonly outcome: Outcome;
  readonly line: string;
}

/** A sender as it may appear in a log line: printable, short. */
export function shown(addr: string): string {
  if (addr === '') return '<>';
  // eslint-disable-next-line no-control-regex
  const a = addr.replace(/[\u0000-\u001f\u007f\s]/g, '?');
  return a.length > 80 ? `${a.slice(0, 79)}…` : a;
}

/** Splits off what Postfix or procmail put in front of the message: a mbox `From ` line, and
 * whether Return-Path/Delivered-To were already prepended (then they are not added again). */
export function envelopeLines(raw: Buffer, env: Envelope): { message: Buffer; rpline: string; dtline: string; prepended: number } {
  // qmail hands the message bare; an LMTP client hands the DATA, which has no From_ line and
  // nothing prepended for the recipient.
  if (env.mta === 'qmail' || env.mta === 'lmtp') return { message: raw, rpline: env.rpline, dtline: env.dtline, prepended: 0 };
  let message = raw;
  if (raw.subarray(0, 5).toString('latin1') === 'From ') {
    const nl = raw.indexOf(0x0a);
    message = nl < 0 ? Buffer.alloc(0) : raw.subarray(nl + 1);
  }
  // Postfix local(8) prepends Return-Path, X-Original-To and Delivered-To for commands (3.7 does).
  const top = readHeaders(message.subarray(0, 4096), 4096).fields.slice(0, 4);
  const dt = top.find((f) => f.name === 'delivered-to' && f.value.toLowerCase() === env.recipient.toLowerCase());
  const rp = top.find((f) => f.name === 'return-path');
  return { message, rpline: rp ? '' : env.rpline, dtline: dt ? '' : env.dtline, prepended: dt ? 1 : 0 };
}

/** The message already passed through this recipient: a Delivered-To line for it beyond the ones
 * the MTA itself prepended for this delivery. */
export function isLoop(headers: Headers, recipient: string, prepended: number): boolean {
  const r = recipient.toLowerCase();
  return headers.all('delivered-to').filter((v) => v.toLowerCase() === r).length > prepended;
}

/** The keys a confirm or sender tag may be bound to: the envelope sender and the From: address,
 * each as it is, as its binding key (no +tag, unwrapped from SRS: what a challenge is bound to),
 * and unwrapped from SRS only (a sender tag made for a +tag address). */
export function senderCandidates(sender: string, from: string | undefined): string[] {
  const out = new Set<string>();
  const add = (a: string | undefined) => {
    const k = a === undefined ? undefined : addressKey(a);
    if (k === undefined) return;
    out.add(k);
    const b = bindingKey(k);
    if (b !== undefined) out.add(b);
    const inner = unwrapSrs(k);
    if (inner !== undefined) out.add(inner);
  };
  add(sender);
  add(from === undefined ? undefined : firstAddress(from));
  return [...out];
}

/** The key that makes holding idempotent: the journal's fast key of sender, recipient and bytes.
 * The store believes a held message found under it only when sender, recipient and bytes agree
 * (Store.hold), so a key shared by two messages costs a comparison, never a message. */
export function digestOf(env: Envelope, message: Buffer): string {
  return deliveryKey(env.sender, env.recipient, message);
}

/** One message for one recipient, as an edge hands it over: plain values, nothing read from the
 * process. */
export interface Delivery {
  /** The recipient's vouch home (a folder). */
  readonly home: string;
  /** The envelope, or how to make it from the home's configured address (procmail gives no
   * recipient of its own). */
  readonly envelope: Envelope | ((address: string) => Envelope);
  /** The message as the MTA handed it over. */
  readonly raw: Buffer;
  readonly now: number;
}

/** Where a delivery gets its store when not by opening it for itself: `vouch serve` lends one of
 * the stores it keeps open and takes it back. */
export interface StoreSource {
  open(paths: HomePaths): Promise<Store>;
  done(store: Store): Promise<void>;
}

/** What differs between the edges, beyond the delivery itself. */
export interface DeliverSeams {
  /** The environment `~` in the home's config is read from (HOME); default process.env. */
  readonly env?: NodeJS.ProcessEnv;
  /** Default: the store opened for this delivery and closed after it (see `exiting`). */
  readonly stores?: StoreSource;
  /** A direct delivery's claim and Maildir write; default: deliverOnce, blocking (a delivery
   * process has nothing else to do meanwhile). `vouch serve` runs it in a writer thread. */
  readonly once?: (job: OnceJob) => void | Promise<void>;
  /** The home's checked config; default loadConfig (`vouch serve` keeps each home's between
   * deliveries while config.toml is unchanged). */
  readonly config?: (home: string, env: NodeJS.ProcessEnv | undefined) => Config;
  /** Seams of the challenge's transport (a server runs sendmail without blocking). */
  readonly transport?: TransportSeams;
  /** See DeliverOptions. */
  readonly exiting?: boolean;
  readonly onDeadline?: (ms: number) => void;
}

/** What every path knows before it decides. */
interface Base {
  readonly config: Config;
  readonly once: NonNullable<DeliverSeams['once']>;
  readonly paths: HomePaths;
  readonly env: Envelope;
  readonly message: Buffer;
  readonly rpline: string;
  readonly dtline: string;
  readonly headers: Headers;
  readonly now: number;
  /** The process environment (TCPREMOTEIP and friends). */
  readonly vars: NodeJS.ProcessEnv;
}

interface Context extends Base {
  /** digestOf(env, message). */
  readonly digest: string;
  /** The checks after the suppression rules, started while SQLite opens the store when the message
   * is almost surely held (an unknown sender at the bare address; see deliverMessage). */
  early?: Promise<Screening>;
  readonly transport: TransportSeams | undefined;
}

/** Runs one delivery to the end and says what happened; throws only TempFail-able errors. Nothing
 * is reported before it is durable: the Maildir file and its folder fsynced, or the store's
 * transaction committed. */
export async function deliverMessage(d: Delivery, seams: DeliverSeams = {}): Promise<Report> {
  const paths = homePaths(d.home);
  const config = seams.config !== undefined ? seams.config(paths.dir, seams.env) : loadConfig(paths.dir, seams.env);
  const env = typeof d.envelope === 'function' ? d.envelope(config.identity.address) : d.envelope;
  const { message, rpline, dtline, prepended } = envelopeLines(d.raw, env);
  const headers = readHeaders(message, config.delivery.header_limit);
  const base: Base = { config, once: seams.once ?? deliverOnceHere, paths, env, message, rpline, dtline, headers, now: d.now, vars: seams.env ?? process.env };
  const loop = isLoop(headers, env.recipient, prepended);
  const done = (line: string): Report => ({ outcome: 'done', line: `vouch: ${line} (${env.mta})` });

  // Mail to the bare address: the lists map answers without the store, and a whitelisted (or
  // junked) message goes to the Maildir without SQLite or node:crypto ever being loaded.
  let map: MapAnswer | undefined;
  if (env.ext === '' && !loop) {
    map = readListMap(paths.dir, lookupKeys(env.sender));
    if (map.usable) {
      const verdict = decide({ loop, tag: { kind: 'none' }, listed: map.hit?.list, blacklistAction: config.delivery.blacklist });
      // A whitelisted sender is delivered whatever it replies to. Junk only when the message names
      // no earlier mail: a reply to the user's own mail wins over the blacklist (step 3), and only
      // the store knows.
      if (verdict.action === 'deliver' || (verdict.action === 'junk' && !namesEarlierMail(headers))) {
        return done(await direct(base, verdict, digestOf(env, message)));
      }
    }
  }

  seams.onDeadline?.(config.delivery.deadline);
  const { Store, StoreMissingError } = await import('../store/store.js');
  // Never created here: a store that is gone is a temporary failure, not a fresh empty one.
  const opening = seams.stores?.open(paths) ?? Store.open(paths.db);
  opening.catch(() => undefined);
  // Hashed while SQLite opens the file on the thread pool.
  const ctx: Context = { ...base, digest: digestOf(env, message), transport: seams.transport };
  // An unknown sender at the bare address is almost always challenged: the challenge code (and
  // child_process, which it needs) is loaded while SQLite finishes opening the store, rather than
  // after the hold. The yield first lets SQLite take its next step meanwhile.
  if (map?.usable === true && map.hit === undefined && config.challenge.enabled) {
    // So are the network checks (DNS answers arrive meanwhile).
    ctx.early = import('../auth/screen.js').then(({ screening }) => screening(screenInput(ctx)));
    ctx.early.catch(() => undefined);
    // Each load is a few milliseconds of this thread, and each step of SQLite's opening (and of the
    // checks' DNS) needs this thread for a moment to start the next: a turn of the event loop before
    // each load lets them take a step while it runs (child_process first: half of the challenge
    // code's load), rather than all of them after it (bench P2).
    await nextTurn();
    await import('node:child_process');
    await nextTurn();
    await import('../challenge/challenge.js').catch(() => undefined);
    if (trained(config)) {
      await nextTurn();
      await import('../classify/bogofilter.js').catch(() => undefined);
    }
  }
  let store: Store;
  try {
    store = await opening;
  } catch (err) {
    if (err instanceof StoreMissingError) throw new TempFail(err.message, '4.3.0', { cause: err });
    throw new TempFail('cannot open the pending store', '4.3.0', { cause: err });
  }
  try {
    const tag = await tagFact(ctx, store);
    const listed = tag.kind === 'none' && map?.usable === true ? map.hit?.list : (await store.lookup(await listedAs(env.sender, tag, store)))?.list;
    const facts = { loop, tag, listed, blacklistAction: config.delivery.blacklist };
    // Replies are looked up only when they can change the decision (needsReplyFact).
    const reply = needsReplyFact(facts) ? await replyFact(ctx, store) : undefined;
    const verdict = decide(reply === undefined ? facts : { ...facts, reply });
    const line = await act(ctx, store, verdict);
    // A missing, damaged or abandoned map is rebuilt once the message is safe; a failure to rebuild
    // costs only speed, never this delivery.
    if (map !== undefined && !map.usable) await store.repairListMap().catch(() => undefined);
    return done(line);
  } finally {
    if (seams.stores !== undefined) await seams.stores.done(store);
    else if (seams.exiting !== true) await store.close().catch(() => undefined);
  }
}

/** One turn of the event loop: what the thread pool and the network finished meanwhile runs first. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The senders whose listing counts: the envelope sender, and for a live confirmation also the
 * sender it was sent to (as held and as bound), so that a confirmation never whitelists or
 * releases what the user has blocked. */
async function listedAs(sender: string, tag: TagFact, store: Store): Promise<string[]> {
  if (tag.kind !== 'confirm' || tag.state !== 'live') return [sender];
  const held = await store.get(tag.heldId);
  if (held === undefined) return [sender];
  const b = bindingKey(held.senderKey);
  return b === undefined ? [sender, held.senderKey] : [sender, held.senderKey, b];
}

/** The message says it answers or continues earlier mail. */
function namesEarlierMail(headers: Headers): boolean {
  return headers.has('in-reply-to') || headers.has('references');
}

/** Whether the message answers mail the user sent through `vouch send`, or is vouch's own digest
 * (sent with the null sender, its Message-ID recorded): one indexed query, or none when the message
 * names no id worth looking up. */
async function replyFact(ctx: Context, store: Store): Promise<ReplyFact> {
  const { headers, env } = ctx;
  const refs = replyIds(headers.all('in-reply-to'), headers.all('references'));
  const own = env.sender === '' ? messageIds(headers.get('message-id') ?? '', 1) : [];
  if (refs.length === 0 && own.length === 0) return { kind: 'none' };
  const known = await store.knownOutgoing([...new Set([...refs, ...own])]);
  if (own.length > 0 && known.some((k) => k.kind === 'digest' && k.id === own[0])) return { kind: 'digest' };
  if (known.some((k) => k.kind === 'sent' && refs.includes(k.id))) {
    // Listed only when a person wrote it: the mail vouch would be willing to challenge (not the null
    // sender, no machine, no list, no Auto-Submitted, no failed SPF or DMARC…).
    const senderKey = addressKey(env.sender);
    const person =
      ctx.config.send.whitelist_replies &&
      suppression({ sender: env.sender, senderKey, own: ctx.config.identity.address.toLowerCase(), headers, authservIds: ctx.config.challenge.authserv_ids }) === undefined;
    return { kind: 'reply', whitelist: person };
  }
  return { kind: 'none' };
}

function screenInput(b: Base): ScreenInput {
  return { config: b.config, sender: b.env.sender, message: b.message, headers: b.headers, now: b.now, vars: b.vars };
}

/** `vouch deliver`'s delivery: the home and the envelope from the command line and environment. */
export function deliverFromEnvironment(raw: Buffer, opts: DeliverOptions): Promise<Report> {
  return deliverMessage(
    { home: homeDir(opts.home, opts.env), envelope: (address) => readEnvelope(opts.env, opts.mta, address, raw), raw, now: opts.now() },
    { env: opts.env, ...(opts.exiting !== undefined ? { exiting: opts.exiting } : {}), ...(opts.onDeadline ? { onDeadline: opts.onDeadline } : {}) },
  );
}

async function tagFact(ctx: Context, store: Store): Promise<TagFact> {
  if (ctx.env.ext === '') return { kind: 'none' };
  const { parseTag, verifyTag } = await import('../tags/tags.js');
  const tag = parseTag(ctx.env.ext);
  if (tag === undefined) return ctx.env.ext.toLowerCase().startsWith('confirm-') ? { kind: 'malformed' } : { kind: 'none' };
  let key: Buffer;
  try {
    key = readSecret(ctx.paths);
  } catch (err) {
    throw new TempFail('cannot read the secret', '4.3.5', { cause: err });
  }
  const senders = senderCandidates(ctx.env.sender, ctx.headers.get('from'));
  const ok = verifyTag(key, tag, senders, ctx.now);
  if (tag.purpose === 'confirm') {
    // The MAC was checked above, before this first look into the store. A used or expired
    // address is the bare address (mail clients keep the request's Reply-To for later mail).
    if (!(await store.confirmUsable(tag.id))) return { kind: 'confirm', state: 'spent' };
    if (ok === false) return { kind: 'confirm', state: 'foreign' };
    // A vacation program or a bounce answering the challenge must not vouch for a (possibly
    // forged) sender: the same rule that keeps such mail from being challenged.
    const automatic = programWrote({ sender: ctx.env.sender, headers: ctx.headers });
    return { kind: 'confirm', state: 'live', heldId: tag.id, ...(automatic === undefined ? {} : { automatic }) };
  }
  if (tag.purpose === 'keyword' && ok !== false) return { kind: 'keyword', valid: !(await store.keywordRevoked(tag.word)) };
  return { kind: tag.purpose, valid: ok !== false };
}

async function act(ctx: Context, store: Store, v: Verdict): Promise<string> {
  switch (v.action) {
    case 'deliver': {
      const line = await direct(ctx, v, ctx.digest);
      // Whitelisted after the delivery: a crash between leaves the message delivered, and the MTA's
      // retry finds it there (deliverOnce) and whitelists then.
      const key = v.whitelist === true ? addressKey(ctx.env.sender) : undefined;
      if (key === undefined) return line;
      await store.addPatterns('white', [exactPattern(key)], ctx.now, { source: 'send', note: 'replied to your mail' });
      return `${line}, sender whitelisted`;
    }
    case 'junk':
      return await direct(ctx, v, ctx.digest);
    case 'drop':
      await store.count('dropped', ctx.now);
      return `dropped: ${v.why} ${shown(ctx.env.sender)}`;
    case 'confirm':
      return confirm(ctx, store, v.heldId);
    case 'hold':
      return hold(ctx, store, v.why, v.silent);
  }
}

/** Delivers to the Maildir (or the junk folder) and says so; `key` is digestOf() of the message. */
async function direct(b: Base, v: Verdict & { action: 'deliver' | 'junk' }, key: string): Promise<string> {
  const who = shown(b.env.sender);
  if (v.action === 'deliver') {
    await deliverOnce(b, b.config.delivery.maildir, key, v.why === 'whitelisted sender' ? clientNote(b) : '');
    const c = b.config.classifier;
    if (c.enabled && c.learn_whitelisted > 0 && v.why === 'whitelisted sender' && sampled(key, c.learn_whitelisted)) keepHamSample(b, key);
    return `delivered: ${v.why} ${who}`;
  }
  await deliverOnce(b, join(b.config.delivery.maildir, b.config.delivery.junk_folder), key);
  return `filed to ${b.config.delivery.junk_folder}: ${v.why} ${who}`;
}

/** Where a whitelisted message came from, kept with its journal claim so the local blocklist never
 * lists a network whitelisted mail comes from (release/blocklist.ts reads it back): the SMTP
 * server's TCPREMOTEIP, or the raw top Received: lines. Not parsed here: the whitelisted path
 * loads no address parser; the few hundred bytes ride in a file it writes anyway. */
function clientNote(b: Base): string {
  const ip = b.vars['TCPREMOTEIP'];
  if (ip !== undefined && ip !== '') return `ip ${ip.slice(0, 64).replace(/[^0-9A-Fa-f.:]/g, '')}\n`;
  let note = '';
  let n = 0;
  for (const f of b.headers.fields) {
    if (f.name !== 'received') continue;
    // Printable ASCII only (an MTA writes its own lines in it): the note is written as Latin-1, so
    // a character such as U+010A would otherwise become a line of the note's own.
    note += `received ${f.value.slice(0, 600).replace(/[^\x20-\x7e]+/g, ' ')}\n`;
    if (++n === 6) break;
  }
  return note;
}

/** Keeps a copy of the message (what the classifier reads of it) for `vouch learn`. Best effort:
 * a sample that cannot be written costs the classifier one example, never the delivery. */
function keepHamSample(b: Base, key: string): void {
  try {
    const dir = join(b.paths.dir, HAM_SAMPLES);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = join(dir, `${key}.ham`);
    writeFileSync(file, b.message.subarray(0, b.config.classifier.max_size), { mode: 0o600 });
    chmodSync(file, 0o600);
  } catch {
    /* no sample */
  }
}

/** Writes the message into `dir` once per message (journal.ts deliverOnce), here or in a writer
 * thread of the server. */
async function deliverOnce(b: Base, dir: string, key: string, note = ''): Promise<void> {
  await b.once({ home: b.paths.dir, maildir: b.config.delivery.maildir, dir, key, name: uniqueName(b.now), now: b.now, note, head: `${b.rpline}${b.dtline}`, message: b.message });
}

async function confirm(ctx: Context, store: Store, heldId: string): Promise<string> {
  const held = await store.get(heldId);
  if (!held) return `dropped: unknown confirmation ${shown(ctx.env.sender)}`;
  // Whitelist and release first, mark the confirm used last: a crash anywhere before leaves the
  // confirm usable, and the retry completes the same steps (each is idempotent). The sender is
  // listed exactly as held (and as the plain address a +tag or SRS sender was bound to), never as
  // a pattern.
  await store.addPatterns('white', exactPatterns([held.senderKey, bindingKey(held.senderKey)]), ctx.now, { source: 'confirmation', note: held.id });
  // Only what the sender could have sent: mail held from the same key as spam or forged stays.
  const all = await store.heldFrom(held.senderKey);
  const mine = all.some((m) => m.id === held.id) ? all : [held, ...all];
  const kept = mine.filter((m) => m.suspect && m.state === 'held').length;
  const done = await release(store, ctx.config, mine.filter((m) => !m.suspect).map((m) => m.id), ctx.now);
  await store.useConfirm(heldId, ctx.now);
  failpoint('confirm:after-use');
  const rest = kept > 0 ? `; ${kept} held as spam or forged kept` : '';
  return `confirmed ${held.id}: released ${done.released.length} from ${shown(held.senderKey)}, sender whitelisted${rest}`;
}

async function hold(ctx: Context, store: Store, why: string, silent: string | undefined): Promise<string> {
  const { env, headers, config } = ctx;
  const senderKey = addressKey(env.sender);
  const { screening, judge } = await import('../auth/screen.js');
  const input = screenInput(ctx);
  const s = silent === undefined && ctx.early !== undefined ? await ctx.early : await screening(input, silent);
  const judged = await judge(input, s, store);
  // Only mail that would otherwise be challenged is classified: after the rules, authentication and
  // the blocklists, before the rate limits (in the hold).
  const classified = judged.hold === undefined && config.classifier.enabled ? await askClassifier(ctx) : undefined;
  const suppressed = judged.hold ?? classified?.suppress;
  const signals = classified === undefined ? judged.signals : { ...judged.signals, classifier: classified.signal };
  // The claim that makes this delivery the one that sends the challenge (claim.ts): a copy of the
  // same message delivered at the same moment, or a retry, sends nothing while it lives.
  const { claimLease, claimNote, processAlive } = await import('../store/store.js');
  const host = hostname();
  const claim = {
    note: claimNote({ at: ctx.now, pid: process.pid, host }),
    view: { now: ctx.now, leaseMs: claimLease(config.delivery.deadline), host, alive: processAlive },
  };
  // A challenge about to be claimed is composed while the hold's commit is under way (HMAC,
  // templates and MIME are a few milliseconds of this thread; the commit's fsync is a wait): it
  // goes out only once hold() has returned, the message durable.
  const challenge = suppressed === undefined ? await import('../challenge/challenge.js').catch(() => undefined) : undefined;
  let composed: Promise<ComposedChallenge> | undefined;
  const compose = (r: HoldResult): void => {
    if (challenge === undefined || !r.owned || r.held === undefined) return;
    const held = r.held;
    composed = (async () => challenge.composeChallenge({ config, secret: readSecret(ctx.paths), held, now: ctx.now }))();
    composed.catch(() => undefined);
  };
  const result = await store.hold(
    {
      digest: ctx.digest,
      received: ctx.now,
      sender: env.sender,
      senderKey: senderKeyOf(env.sender),
      recipient: env.recipient,
      fromHeader: cleanText(headers.get('from'), 300),
      subject: cleanText(headers.get('subject'), 300),
      date: cleanText(headers.get('date'), 100),
      messageId: cleanText(headers.get('message-id'), 300),
      reason: why,
      challenge: suppressed === undefined ? 'pending' : 'suppressed',
      challengeNote: suppressed ?? '',
      rpline: ctx.rpline,
      dtline: ctx.dtline,
      raw: ctx.message,
      signals,
      suspect: judged.suspect || classified?.suspect === true,
    },
    senderKey === undefined
      ? undefined
      : { domain: domainOf(senderKey), window: config.challenge.rate_window, perDomainHourly: config.challenge.per_domain_hourly, globalHourly: config.challenge.global_hourly },
    claim,
    compose,
  );
  failpoint('store:after-commit');
  // The classifier's spam verdict is a late verdict like an expired request: the client goes on the
  // local blocklist (release/blocklist.ts; never a network whitelisted mail came from). Best effort:
  // the message is held and durable whatever happens here.
  if (result.fresh && classified?.suspect === true) {
    try {
      const { foldWhitelistedClients, recordSpamClient } = await import('../release/blocklist.js');
      // Servers whitelisted mail came from this week first: they are never listed.
      await foldWhitelistedClients(store, config, ctx.now);
      await recordSpamClient(store, config, { sender: env.sender, signals }, ctx.now);
    } catch {
      /* not listed */
    }
  }
  const head = `held ${result.id}: ${why} ${shown(env.sender)}${classified?.failure === undefined ? '' : `; ${classified.failure}, usual rules`}`;
  if (!result.owned) {
    if (!result.fresh) return `${head}; already held${result.challenge === 'sending' ? ', its challenge on its way' : ''}`;
    return result.challenge === 'suppressed' ? `${head}; challenge suppressed (${result.note})` : `${head}; challenge ${result.challenge}`;
  }
  // This delivery claimed the challenge: fresh, or a retry that took over one nobody was sending.
  const held = result.held ?? (await store.get(result.id));
  if (!held) throw new Error('held message vanished');
  const { sendClaimed, transportFor } = await import('../challenge/challenge.js');
  const transport = ctx.transport && transportFor(config.send, ctx.transport);
  const sent = await sendClaimed(store, { config, secret: () => readSecret(ctx.paths), held, now: ctx.now }, transport, result.held === held ? composed : undefined);
  return `${head}; challenge ${sent.ok ? 'sent' : `failed (${sent.reason})`}`;
}

/** The classifier is on and has a word list (bogofilter's file in classifier.wordlists). */
function trained(config: Config): boolean {
  return config.classifier.enabled && existsSync(join(config.classifier.wordlists, 'wordlist.db'));
}

/** The classifier's word on a message that would otherwise be challenged. Whatever goes wrong
 * (the module, the program, its answer) ends as a failure the log line names, never as an error. */
async function askClassifier(ctx: Context): Promise<ClassifierOutcome> {
  // Without a word list bogofilter could only say "unsure": neither it nor its runner is loaded.
  if (!trained(ctx.config)) return classifierOutcome({ kind: 'untrained' }, ctx.config.classifier.suppress);
  try {
    const { judge: run } = await import('../classify/bogofilter.js');
    return await run(ctx.config.classifier, ctx.message);
  } catch {
    return { suppress: undefined, suspect: false, signal: { verdict: 'error', error: 'cannot load' }, failure: 'classifier cannot load' };
  }
}

/** The process entry for `vouch deliver`: never lets an error escape as exit 1. */
export async function main(opts: DeliverOptions): Promise<never> {
  const mta: Mta = opts.mta ?? detectMta(opts.env) ?? 'qmail';
  const fail = (err: unknown): never => {
    const t = asTempFail(err);
    if (opts.env['VOUCH_DEBUG']) process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
    writeLine(t.line());
    process.exit(exitCode(mta, 'tempfail'));
  };
  process.on('uncaughtException', fail);
  process.on('unhandledRejection', fail);
  // The deadline timer is set only when the delivery is about to wait (see onDeadline): a
  // whitelisted delivery never waits, and Node's first timer costs it a quarter of a millisecond.
  const late = () => fail(new TempFail('delivery took too long', '4.3.0'));
  let timer: NodeJS.Timeout | undefined;
  const onDeadline = (ms: number) => {
    clearTimeout(timer);
    timer = setTimeout(late, ms);
  };
  try {
    const raw = await readInput(0, undefined, () => onDeadline(300_000));
    const report = await deliverFromEnvironment(raw, { ...opts, onDeadline, exiting: true });
    failpoint('deliver:before-exit');
    if (timer !== undefined) clearTimeout(timer);
    writeLine(report.line);
    process.exit(exitCode(mta, report.outcome));
  } catch (err) {
    return fail(err);
  }
}
