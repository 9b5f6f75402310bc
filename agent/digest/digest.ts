// `vouch digest`: one mail to the user about the mail held since the last digest (sender, subject,
// when, why held, whether a challenge went out, and where to review it), plain text and HTML from
// the templates, never any body text; no mail at all when nothing new was held. It goes through
// the configured transport to identity.address with the null envelope sender, and its Message-ID is
// recorded first, so that vouch delivers it when it comes back (decide.ts: 'vouch digest').

import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import { domainOf } from '../mail/address.js';
import type { Config } from '../home/config.js';
import { oneLine, template } from '../challenge/challenge.js';
import { TransportError, transportFor, type Transport } from '../challenge/transport.js';
import type { Held, Store } from '../store/store.js';

/** The most messages one digest lists; the rest are counted. */
export const DIGEST_MAX = 200;

export interface DigestLine {
  readonly id: string;
  readonly received: string;
  readonly sender: string;
  readonly from: string;
  readonly subject: string;
  readonly reason: string;
  readonly challenge: string;
  readonly link: string;
}

/** What the templates see. Every value is one clean line; the HTML template escapes each. */
export interface DigestView {
  readonly address: string;
  readonly count: number;
  readonly plural: boolean;
  readonly shown: number;
  readonly more: number;
  readonly url: string;
  readonly newest: string;
  readonly subject: string;
  readonly messages: readonly DigestLine[];
}

export interface DigestResult {
  /** False when nothing new was held: no mail went. */
  readonly sent: boolean;
  readonly count: number;
  readonly messageId?: string;
}

/** The review page's address: web.url, or the address `vouch web` listens on. */
export function reviewUrl(config: Config): string {
  const u = config.web.url !== '' ? config.web.url : `http://${config.web.listen}/`;
  return u.endsWith('/') ? u : `${u}/`;
}

function when(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function challengeText(h: Held): string {
  switch (h.challenge) {
    case 'sent':
      return 'challenge sent';
    case 'suppressed':
      return `no challenge (${h.challengeNote})`;
    case 'failed':
      return `challenge failed (${h.challengeNote})`;
    case 'pending':
    case 'sending':
      return 'challenge not sent yet';
    case 'none':
      return 'no challenge';
  }
}

export function digestView(config: Config, held: readonly Held[], total: number): Omit<DigestView, 'subject'> {
  const url = reviewUrl(config);
  const messages = held.map((h) => ({
    id: h.id,
    received: when(h.received),
    sender: oneLine(h.sender === '' ? '<>' : h.sender, 120),
    from: oneLine(h.fromHeader, 120),
    subject: oneLine(h.subject, 160),
    reason: oneLine(h.reason, 120),
    challenge: oneLine(challengeText(h), 160),
    link: `${url}message/${h.id}`,
  }));
  return {
    address: config.identity.address,
    count: total,
    plural: total !== 1,
    shown: messages.length,
    more: total - messages.length,
    url,
    newest: messages[0]?.sender ?? '',
    messages,
  };
}

async function render(dir: string, name: string, view: object, html: boolean): Promise<string> {
  const source = await template(dir, name);
  const { default: Handlebars } = await import('handlebars');
  try {
    // HTML: every {{value}} escaped by handlebars (the templates use no {{{…}}}). Text: one-line
    // values, nothing to escape.
    return Handlebars.create().compile(source, { noEscape: !html, strict: false })(view);
  } catch (err) {
    throw new TransportError('ETEMPLATE', `cannot render ${name}`, { cause: err });
  }
}

/** The digest mail for these held messages (newest first; `total` of them in all). */
export async function composeDigest(config: Config, held: readonly Held[], total: number, now: number): Promise<{ raw: Buffer; messageId: string }> {
  const base = digestView(config, held, total);
  const dir = config.challenge.templates;
  const subject = oneLine(await render(dir, 'digest-subject.hbs', base, false), 200) || 'vouch: held messages';
  const view: DigestView = { ...base, subject };
  const text = (await render(dir, 'digest.hbs', view, false)).replace(/\r\n?/g, '\n');
  const html = await render(dir, 'digest.html.hbs', view, true);
  const messageId = `digest.${now.toString(36)}.${randomBytes(12).toString('hex')}@${domainOf(config.identity.address)}`;
  const mail = new MailComposer({
    from: { name: 'vouch digest', address: config.identity.address },
    to: config.identity.address,
    subject,
    date: new Date(now),
    messageId: `<${messageId}>`,
    headers: { 'Auto-Submitted': 'auto-generated', 'X-Auto-Response-Suppress': 'All' },
    text,
    html,
  });
  const raw = await new Promise<Buffer>((resolve, reject) => mail.compile().build((err, out) => (err ? reject(err) : resolve(out))));
  return { raw, messageId };
}

/** Sends the digest of what was held since the last one, if anything was. The Message-ID is
 * recorded before the mail goes (it may come back before this returns), and the messages are
 * marked after: a failure in between means the next digest names them again, never that one is
 * never named. */
export async function sendDigest(store: Store, config: Config, now: number, transport: Transport = transportFor(config.send)): Promise<DigestResult> {
  const { held, total, upTo } = await store.undigested(DIGEST_MAX);
  if (total === 0) return { sent: false, count: 0 };
  const { raw, messageId } = await composeDigest(config, held, total, now);
  await store.recordOutgoing([messageId], 'digest', now);
  await transport.send({ from: '', to: config.identity.address }, raw);
  await store.markDigested(upTo, now);
  return { sent: true, count: total, messageId };
}
