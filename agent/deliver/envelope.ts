// The delivery environment, as qmail-local or Postfix local(8) sets it, read once into a frozen
// Envelope. Nothing downstream looks at process.env for delivery facts.

import type { Mta } from '../failure/failure.js';
import { TempFail } from '../failure/failure.js';

/** Who handed the message over: an MTA running `vouch deliver`, or an LMTP client (`vouch serve`). */
export type Via = Mta | 'lmtp';

export interface Envelope {
  readonly mta: Via;
  /** The envelope sender exactly as given; '' is the null sender. */
  readonly sender: string;
  /** The full recipient address, extension included. */
  readonly recipient: string;
  /** The recipient extension after the user's name and delimiter ('' when there is none). */
  readonly ext: string;
  /** `Return-Path: <…>\n` as qmail-local would write it. */
  readonly rpline: string;
  /** `Delivered-To: …\n` as qmail-local would write it. */
  readonly dtline: string;
}

// Control characters never survive into a sender or recipient: CR/LF would forge header lines.
// eslint-disable-next-line no-control-regex
export const oneLine = (s: string) => s.replace(/[\r\n]/g, '').replace(/[\u0000-\u001f\u007f]/g, '?');

/** Which MTA ran us: qmail-local sets DTLINE/RPLINE, Postfix local(8) sets DOMAIN/EXTENSION. */
export function detectMta(env: NodeJS.ProcessEnv): Mta | undefined {
  if (env['DTLINE'] !== undefined || env['RPLINE'] !== undefined) return 'qmail';
  if (env['DOMAIN'] !== undefined || env['EXTENSION'] !== undefined || env['ORIGINAL_RECIPIENT'] !== undefined) return 'postfix';
  return undefined;
}

/** The sender of an mbox `From sender date` line (procmail hands messages over with one). */
export function fromLineSender(raw: Uint8Array): string | undefined {
  if (raw.length < 5 || Buffer.from(raw.subarray(0, 5)).toString('latin1') !== 'From ') return undefined;
  const end = Buffer.from(raw.subarray(0, 1024)).indexOf(0x0a);
  const line = Buffer.from(raw.subarray(5, end < 0 ? Math.min(raw.length, 1024) : end)).toString('latin1');
  const sender = line.trim().split(/\s+/)[0];
  return sender === undefined || sender === 'MAILER-DAEMON' ? '' : sender;
}

/** Reads the envelope. `fallbackRecipient` (the configured address) is used where the MTA gives none,
 * as under procmail, where the sender may come from the message's From_ line (`raw`). */
export function readEnvelope(env: NodeJS.ProcessEnv, forced: Mta | undefined, fallbackRecipient: string, raw?: Uint8Array): Envelope {
  const mta = forced ?? detectMta(env);
  if (mta === undefined) throw new TempFail('no qmail or Postfix delivery environment (use --mta)', '4.3.5');
  const given = env['SENDER'] ?? (mta === 'procmail' && raw ? fromLineSender(raw) : undefined);
  const sender = oneLine(given ?? '');
  if (mta === 'qmail') {
    if (env['SENDER'] === undefined) throw new TempFail('SENDER is not set', '4.3.5');
    const host = env['HOST'] ?? '';
    const local = env['LOCAL'] ?? '';
    const recipient = oneLine(env['RECIPIENT'] ?? (local && host ? `${local}@${host}` : fallbackRecipient));
    return Object.freeze({
      mta,
      sender,
      recipient,
      ext: oneLine(env['EXT'] ?? ''),
      rpline: withNewline(env['RPLINE'] ?? `Return-Path: <${sender}>`),
      dtline: withNewline(env['DTLINE'] ?? `Delivered-To: ${recipient}`),
    });
  }
  const recipient = oneLine(env['RECIPIENT'] ?? fallbackRecipient);
  return Object.freeze({
    mta,
    sender,
    recipient,
    ext: oneLine(env['EXTENSION'] ?? env['EXT'] ?? ''),
    rpline: `Return-Path: <${sender}>\n`,
    dtline: `Delivered-To: ${recipient}\n`,
  });
}

function withNewline(line: string): string {
  const l = line.replace(/[\r\n]+$/, '').replace(/[\r\n]/g, ' ');
  return `${l}\n`;
}

/** The envelope of one LMTP recipient: the sender of MAIL FROM ('' for <>), the address of RCPT TO
 * and its extension; the lines are the ones qmail-local would write. */
export function lmtpEnvelope(sender: string, recipient: string, ext: string): Envelope {
  const s = oneLine(sender);
  const r = oneLine(recipient);
  return Object.freeze({ mta: 'lmtp', sender: s, recipient: r, ext: oneLine(ext), rpline: `Return-Path: <${s}>\n`, dtline: `Delivered-To: ${r}\n` });
}
