// `vouch send`: the sendmail of the user's mail client. The message goes on to the real sendmail
// (`send.sendmail`) as it came, with its argv; once that program has taken it (exit 0), every
// recipient is whitelisted as an exact address and the Message-ID is recorded, so that the people
// the user writes to are never challenged and their replies, from any address, arrive.

import { spawnSync as nodeSpawnSync, type SpawnSyncOptionsWithBufferEncoding, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import addressparser from 'nodemailer/lib/addressparser';
import { addressKey, domainOf, exactPattern, type Pattern } from '../mail/address.js';
import { headerEnd, readHeaders, type Headers } from '../mail/header.js';
import { messageIds } from '../mail/msgid.js';
import { loadConfig, type Config } from '../home/config.js';
import { homeDir, homePaths, readSecret } from '../home/home.js';
import { datedTag, senderTag, taggedAddress } from '../tags/tags.js';
import { parseSendArgs, passThrough, qmailInjectArgs, SendUsageError, type SendArgs } from './argv.js';

/** sysexits.h, as sendmail answers: what mail clients show the user. */
export const EX_USAGE = 64;
export const EX_UNAVAILABLE = 69;
export const EX_TEMPFAIL = 75;
export const EX_CONFIG = 78;

/** Set in the real sendmail's environment: a `vouch send` that finds it was started by one. */
const LOOP_MARK = 'VOUCH_SEND_ACTIVE';

export interface SendOptions {
  readonly home: string | undefined;
  /** The words after `vouch send`. */
  readonly argv: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly now: () => number;
  /** The message (stdin); not called for modes that send nothing of the user's. */
  readonly input: () => Promise<Buffer>;
  readonly stderr: (line: string) => void;
  readonly spawnSync?: (command: string, args: readonly string[], options: SpawnSyncOptionsWithBufferEncoding) => SpawnSyncReturns<Buffer>;
}

/** What a send would learn from one message: the recipients' keys and the Message-ID. */
export interface Learnt {
  readonly recipients: readonly string[];
  readonly messageId: string | undefined;
}

/** Every address in the values of address fields (To, Cc, Bcc…), as keys; groups flattened. */
export function addressesIn(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) {
    for (const a of addressparser(v, { flatten: true })) {
      const key = a.address === undefined ? undefined : addressKey(a.address);
      if (key !== undefined) out.push(key);
    }
  }
  return out;
}

/** True for the user's own address and its tagged forms: never whitelisted. */
export function isOwn(key: string, config: Config): boolean {
  const own = config.identity.address.toLowerCase();
  if (key === own) return true;
  const at = own.lastIndexOf('@');
  return domainOf(key) === own.slice(at + 1) && key.startsWith(`${own.slice(0, at)}${config.identity.delimiter}`);
}

/** The recipients of a message as `vouch send` sees it: the arguments and To, Cc and Bcc (with -t
 * those are the recipients; without it, they are still the people written to), each once, without
 * the user's own addresses. */
export function recipientsOf(args: SendArgs, headers: Headers, config: Config): string[] {
  const keys = [...addressesIn(args.recipients), ...addressesIn(['to', 'cc', 'bcc'].flatMap((n) => headers.all(n)))];
  return [...new Set(keys)].filter((k) => !isOwn(k, config));
}

/** Adds a Message-ID when the message has none, as sendmail itself would (vouch needs to know it
 * to recognise replies): the one change `vouch send` makes to a message. Line ends follow the
 * message's own. */
export function ensureMessageId(raw: Buffer, headers: Headers, domain: string, now: number): { raw: Buffer; id: string } {
  const have = messageIds(headers.get('message-id') ?? '', 1)[0];
  if (have !== undefined) return { raw, id: have };
  const id = `${now.toString(36)}.${randomBytes(9).toString('hex')}@${domain}`;
  const nl = raw.indexOf(0x0a);
  const eol = nl > 0 && raw[nl - 1] === 0x0d ? '\r\n' : '\n';
  return { raw: Buffer.concat([Buffer.from(`Message-ID: <${id}>${eol}`), raw]), id };
}

/** The address in From: replaced by `tagged` where it is the user's own (any case); the rest of
 * the message byte for byte. */
export function rewriteFrom(raw: Buffer, own: string, tagged: string): Buffer {
  const { end } = headerEnd(raw, 1 << 20);
  const head = raw.subarray(0, end).toString('latin1');
  const lines = head.split('\n');
  let inFrom = false;
  let changed = false;
  const swap = (text: string): string => {
    const lower = text.toLowerCase();
    let out = '';
    let from = 0;
    for (let at = lower.indexOf(own); at >= 0; at = lower.indexOf(own, at + own.length)) {
      const before = lower[at - 1] ?? ' ';
      const after = lower[at + own.length] ?? ' ';
      if (/[a-z0-9._%+-]/.test(before) || /[a-z0-9.-]/.test(after)) continue;
      out += text.slice(from, at) + tagged;
      from = at + own.length;
      changed = true;
    }
    return out + text.slice(from);
  };
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i] ?? '';
    if (l.startsWith(' ') || l.startsWith('\t')) {
      if (inFrom) lines[i] = swap(l);
      continue;
    }
    inFrom = /^from:/i.test(l);
    if (inFrom) lines[i] = `${l.slice(0, 5)}${swap(l.slice(5))}`;
  }
  if (!changed) return raw;
  return Buffer.concat([Buffer.from(lines.join('\n'), 'latin1'), raw.subarray(end)]);
}

/** The tagged address for this message: `sender-` bound to its one recipient, `dated-` for several. */
export function taggedSender(config: Config, secret: Buffer, recipients: readonly string[], now: number): string | undefined {
  if (config.send.tag_sender === 'off' || recipients.length === 0) return undefined;
  const only = recipients.length === 1 ? recipients[0] : undefined;
  const tag = only !== undefined ? senderTag(secret, only) : datedTag(secret, now + config.send.tag_lifetime);
  return taggedAddress(config.identity.address, config.identity.delimiter, tag);
}

/** Runs `vouch send` to its exit code (sendmail's: the real sendmail's own, or a sysexits code). */
export async function runSend(opts: SendOptions): Promise<number> {
  const spawnSync = opts.spawnSync ?? nodeSpawnSync;
  let args: SendArgs;
  try {
    args = parseSendArgs(opts.argv);
  } catch (err) {
    if (!(err instanceof SendUsageError)) throw err;
    opts.stderr(`vouch send: ${err.message}`);
    return EX_USAGE;
  }
  // send.sendmail pointing back at `vouch send` (a wrapper script named as the real sendmail) would
  // run it again and again: the child is marked, and a marked `vouch send` refuses.
  if (opts.env[LOOP_MARK] !== undefined) {
    opts.stderr('vouch send: send.sendmail runs vouch send again; it must be the real sendmail (e.g. /usr/sbin/sendmail)');
    return EX_CONFIG;
  }
  const paths = homePaths(homeDir(opts.home, opts.env));
  let config: Config;
  try {
    config = loadConfig(paths.dir, opts.env);
  } catch (err) {
    opts.stderr(`vouch send: ${(err as Error).message}`);
    return EX_CONFIG;
  }
  const program = config.send.sendmail;
  const qmailInject = basename(program) === 'qmail-inject';
  const run = (argv: readonly string[], input: Buffer | undefined, env: Record<string, string> = {}): number => {
    const r = spawnSync(program, argv, {
      ...(input !== undefined ? { input } : {}),
      stdio: [input !== undefined ? 'pipe' : 'inherit', 'inherit', 'inherit'],
      env: { ...opts.env, ...env, [LOOP_MARK]: '1' },
      shell: false,
    });
    if (r.error !== undefined && r.status === null && r.signal === null) {
      opts.stderr(`vouch send: cannot run ${program}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}`);
      return EX_UNAVAILABLE;
    }
    return r.status ?? EX_TEMPFAIL;
  };

  if (args.mode === 'other') {
    if (qmailInject) {
      opts.stderr('vouch send: qmail-inject only sends mail (no -b modes, -q or -I)');
      return EX_USAGE;
    }
    return run(opts.argv, undefined);
  }

  const now = opts.now();
  const input = await opts.input();
  const headers0 = readHeaders(input, 1 << 20);
  const { raw: withId, id } = ensureMessageId(input, headers0, domainOf(config.identity.address), now);
  const recipients = recipientsOf(args, headers0, config);
  let message = withId;
  let tagged: string | undefined;
  if (config.send.tag_sender !== 'off') {
    try {
      tagged = taggedSender(config, readSecret(paths), recipients, now);
    } catch (err) {
      opts.stderr(`vouch send: cannot make the tagged address: ${(err as Error).message}`);
      return EX_TEMPFAIL;
    }
    if (tagged !== undefined && config.send.tag_sender === 'from') message = rewriteFrom(message, config.identity.address.toLowerCase(), tagged);
  }
  const status = qmailInject
    ? (() => {
        const q = qmailInjectArgs(args, tagged);
        return run(q.argv, message, q.env);
      })()
    : run(passThrough(opts.argv, args, tagged), message);
  // Nothing is learnt from mail that did not go.
  if (status !== 0) return status;
  try {
    await learn(paths.db, recipients.map(exactPattern), id, now);
  } catch (err) {
    // The mail went: a failure now must not make the client send it again.
    opts.stderr(`vouch send: sent, but not recorded (${(err as Error).message}); its recipients are not whitelisted`);
  }
  return 0;
}

async function learn(db: string, patterns: readonly Pattern[], id: string, now: number): Promise<void> {
  const { Store } = await import('../store/store.js');
  const store = await Store.open(db, { busyMs: 10_000 });
  try {
    await store.recordOutgoing([id], 'sent', now);
    await store.addPatterns('white', patterns, now, { source: 'send', note: id });
  } finally {
    await store.close();
  }
}
