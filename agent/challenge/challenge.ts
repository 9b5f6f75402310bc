// Confirmation requests: rendered from templates/ (or the user's own), composed by mime.ts, sent
// with the null envelope sender. Only the challenge path loads this module.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { bindingKey, domainOf, isPlainAddress } from '../mail/address.js';
import type { Config } from '../home/config.js';
import { packageRoot } from '../home/home.js';
import { composeText } from './mime.js';
import type { Held, Store } from '../store/store.js';
import { failpoint } from '../failure/failpoint.js';
import { confirmTag, taggedAddress } from '../tags/tags.js';
import { TransportError, transportFor, type MailEnvelope, type Transport } from './transport.js';

export { transportFor };

export interface ChallengeRequest {
  readonly config: Config;
  readonly secret: Buffer;
  readonly held: Held;
  readonly now: number;
}

export interface ComposedChallenge {
  readonly envelope: MailEnvelope;
  readonly raw: Buffer;
  readonly confirmAddress: string;
}

/** What the templates see: every value already one clean line. */
export interface ChallengeView {
  readonly address: string;
  readonly name: string;
  readonly confirm: string;
  readonly subject: string;
  readonly from: string;
  readonly date: string;
  readonly lifetime: string;
}

/** Text made safe for a header or a line of the body: no control characters (CR and LF among
 * them), no Unicode line separators, white space folded, cut to `max` characters. */
export function oneLine(text: string, max: number): string {
  // eslint-disable-next-line no-control-regex
  const t = text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** A Message-ID worth referring to: one `<left@right>` of printable ASCII, nothing around it. */
export function wellFormedMessageId(value: string): string | undefined {
  const v = value.trim();
  return /^<[\x21-\x3b\x3d\x3f-\x7e]{1,250}>$/.test(v) && /^<[^@]+@[^@]+>$/.test(v) ? v : undefined;
}

/** "14 days", "36 hours", "90 minutes": the pending lifetime as the template shows it. */
export function humanDuration(ms: number): string {
  const units: [number, string][] = [[86_400_000, 'day'], [3_600_000, 'hour'], [60_000, 'minute'], [1000, 'second']];
  for (const [size, name] of units) {
    if (ms >= size && ms % size === 0) {
      const n = ms / size;
      return `${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  const n = Math.max(1, Math.round(ms / 1000));
  return `${n} second${n === 1 ? '' : 's'}`;
}

/** The user's template when `dir` has one, else the built-in one. Read with one blocking call (a
 * small file in the page cache): `vouch serve` would otherwise pay four thread-pool round trips a
 * template for each challenge, and a delivery process has nothing else to do meanwhile. */
export async function template(dir: string, name: string): Promise<string> {
  // Most homes have no templates folder of their own: one check, not a failed read per template.
  const bases = existsSync(dir) ? [dir, join(packageRoot(), 'templates')] : [join(packageRoot(), 'templates')];
  for (const base of bases) {
    try {
      return readFileSync(join(base, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TransportError('ETEMPLATE', `cannot read ${name}`, { cause: err });
    }
  }
  throw new TransportError('ETEMPLATE', `no ${name} template`);
}

/** Templates compiled once per source text: a process that sends many requests (`vouch serve`)
 * compiles each template once, not once per request. Bounded: users' own templates differ. */
const compiled = new Map<string, (view: ChallengeView) => string>();

async function render(dir: string, name: string, view: ChallengeView): Promise<string> {
  const source = await template(dir, name);
  const { default: Handlebars } = await import('handlebars');
  try {
    let fn = compiled.get(source);
    if (fn === undefined) {
      // Plain text, not HTML: nothing to escape; every value in the view is already one clean line.
      fn = Handlebars.create().compile(source, { noEscape: true });
      if (compiled.size >= 64) compiled.clear();
      compiled.set(source, fn);
    }
    return fn(view);
  } catch (err) {
    throw new TransportError('ETEMPLATE', `cannot render ${name}`, { cause: err });
  }
}

function randomHex(n: number): string {
  let out = '';
  while (out.length < n) out += Math.floor(Math.random() * 0x1_0000_0000).toString(16).padStart(8, '0');
  return out.slice(0, n);
}

/** Builds the request for one held message; throws a TransportError when it cannot be sent. */
export async function composeChallenge(req: ChallengeRequest): Promise<ComposedChallenge> {
  const { config, held } = req;
  const to = held.sender;
  if (!isPlainAddress(to)) throw new TransportError('EADDRESS', 'the sender is not a plain address');
  const { address, delimiter } = config.identity;
  let confirm: string;
  try {
    // Bound to the sender's plain form (no +tag, unwrapped from SRS): the key a reply from the
    // person's own address is checked against too (senderCandidates).
    confirm = taggedAddress(address, delimiter, confirmTag(req.secret, held.id, bindingKey(held.senderKey) ?? held.senderKey));
  } catch (err) {
    throw new TransportError('EADDRESS', 'the confirmation address is too long', { cause: err });
  }
  const name = oneLine(config.identity.name, 100);
  const view: ChallengeView = {
    address,
    name,
    confirm,
    subject: oneLine(held.subject, 120),
    from: oneLine(held.fromHeader, 120),
    date: oneLine(held.date, 80),
    lifetime: humanDuration(config.pending.lifetime),
  };
  const dir = config.challenge.templates;
  const subject = oneLine(await render(dir, 'challenge-subject.hbs', view), 200) || 'Please confirm your message';
  const text = (await render(dir, 'challenge.hbs', view)).replace(/\r\n?/g, '\n');

  const self = name === '' ? confirm : { name, address: confirm };
  const original = wellFormedMessageId(held.messageId);
  // LF line ends (composeText's only kind): what qmail-inject and sendmail expect on stdin; the
  // SMTP client makes them CRLF.
  const raw = composeText({
    from: self,
    replyTo: self,
    to,
    subject,
    date: new Date(req.now),
    // Unique, not secret (Math.random: node:crypto would cost the challenge path 2.5 ms to load).
    messageId: `<${req.now.toString(36)}.${randomHex(18)}@${domainOf(address)}>`,
    ...(original !== undefined ? { inReplyTo: original, references: original } : {}),
    headers: [['Auto-Submitted', 'auto-replied'], ['X-Auto-Response-Suppress', 'All']],
    text,
  });
  return { envelope: { from: '', to }, raw, confirmAddress: confirm };
}

/** Composes and sends one request through the configured transport (or the one given). */
export async function sendChallenge(req: ChallengeRequest, transport: Transport = transportFor(req.config.send)): Promise<void> {
  const { envelope, raw } = await composeChallenge(req);
  await transport.send(envelope, raw);
}

/** Sends a challenge this process has claimed (Store.hold, Store.claimChallenge) and records how it
 * went: 'sent' (counted by the trigger messages_challenged), or 'failed' with the transport's code.
 * A crash between the send and the mark leaves the claim to be taken over by a retry or `vouch
 * fsck`, which sends it once more: the one moment where a request can go out twice. */
export async function sendClaimed(
  store: Store,
  req: Omit<ChallengeRequest, 'secret'> & { readonly secret: () => Buffer },
  transport?: Transport,
  composed?: Promise<ComposedChallenge>,
): Promise<{ ok: true } | { ok: false; reason: string }> {
  try {
    // `composed`: this same request, composed beforehand (while the hold committed).
    const { envelope, raw } = await (composed ?? composeChallenge({ ...req, secret: req.secret() }));
    await (transport ?? transportFor(req.config.send)).send(envelope, raw);
  } catch (err) {
    const reason = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'transport error';
    await store.setChallenge(req.held.id, 'failed', reason);
    return { ok: false, reason };
  }
  failpoint('challenge:after-send');
  await store.challengeSent(req.held.id);
  return { ok: true };
}
