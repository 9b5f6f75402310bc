// Composes the one kind of message vouch writes, the confirmation request: text/plain in UTF-8, LF
// line ends, headers folded and RFC 2047 encoded here so that nothing a value holds can end its line.

import { isPlainAddress } from '../mail/address.js';

/** A bare address, or one with a display name. */
export type Mailbox = string | { readonly name?: string; readonly address: string };

export interface PlainMail {
  readonly from: Mailbox;
  readonly replyTo: Mailbox;
  readonly to: string;
  readonly subject: string;
  readonly date: Date;
  /** `<left@right>`, as it is to appear. */
  readonly messageId: string;
  readonly inReplyTo?: string;
  readonly references?: string;
  /** Further fields, written in this order after References (e.g. Auto-Submitted). */
  readonly headers?: readonly (readonly [name: string, value: string])[];
  readonly text: string;
}

/** RFC 5322 2.1.1: lines of at most 78 characters where it can be helped, never more than 998. */
const SOFT = 78;
const HARD = 998;
/** RFC 2047 2: the longest encoded-word; `=?UTF-8?Q?` and `?=` take 12 of it. */
const WORD = 75;
const WORD_FRAME = 12;
/** A phrase that may stand unquoted: atoms (RFC 5322 atext) with one space between them. */
const ATOMS = /^[\w!#$%&'*+\-/=?^`{|}~]+(?: [\w!#$%&'*+\-/=?^`{|}~]+)*$/;
/** What a Q encoded-word may carry as it is, even in a phrase (RFC 2047 5(3)). */
const Q_LITERAL = /^[A-Za-z0-9!*+\-/]$/;

/** Builds the whole message: headers, a blank line, the body. The result is ASCII throughout. */
export function composeText(mail: PlainMail): Buffer {
  const body = bodyOf(mail.text);
  const fields = [
    field('Date', dateOf(mail.date)),
    field('Message-ID', clean(mail.messageId)),
    mailboxField('From', mail.from),
    mailboxField('Reply-To', mail.replyTo),
    mailboxField('To', mail.to),
    textField('Subject', clean(mail.subject), false),
    ...optional('In-Reply-To', mail.inReplyTo),
    ...optional('References', mail.references),
    ...(mail.headers ?? []).map(([name, value]) => textField(fieldName(name), clean(value), false)),
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    `Content-Transfer-Encoding: ${body.encoding}`,
  ];
  return Buffer.from(`${fields.join('\n')}\n\n${body.text}`, 'utf8');
}

/** Control characters (CR and LF among them) and Unicode line separators become a space, so no
 * value can end its header line. The caller has cleaned them already; this is the last guard. */
function clean(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').trim();
}

function fieldName(name: string): string {
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) throw new TypeError(`not a header field name: ${JSON.stringify(name)}`);
  return name;
}

/** `Mon, 23 Nov 2026 10:00:00 +0000`: RFC 5322 3.3, always in UTC. */
function dateOf(date: Date): string {
  if (Number.isNaN(date.getTime())) throw new RangeError('the date is not a valid time');
  return date.toUTCString().replace(/GMT$/, '+0000');
}

function optional(name: string, value: string | undefined): string[] {
  const v = value === undefined ? '' : clean(value);
  return v === '' ? [] : [field(name, v)];
}

/** A field whose value is ASCII without words too long to fold (addresses, message ids, dates). */
function field(name: string, value: string): string {
  const folded = fold(name, value);
  if (folded === undefined) throw new RangeError(`the ${name} field cannot be folded within ${HARD} characters`);
  return folded;
}

/** The one thing refused rather than cleaned: an address that cannot be written without quoting
 * could change who the field names. */
function mailboxField(name: string, box: Mailbox): string {
  const { name: display = '', address } = typeof box === 'string' ? { address: box } : box;
  if (!isPlainAddress(address)) throw new TypeError(`not a plain address: ${JSON.stringify(address)}`);
  const phrase = clean(display);
  return phrase === '' ? field(name, address) : textField(name, phrase, true, ` <${address}>`);
}

/** A subject, extra field or display name (`phrase`): as it is (a phrase with specials quoted) when
 * it is printable ASCII that cannot be read as an encoded-word and folds within 998 characters,
 * else as encoded-words. `after` follows the text: a display name's ` <address>`. */
function textField(name: string, text: string, phrase: boolean, after = ''): string {
  if (/^[\x20-\x7e]*$/.test(text) && !text.includes('=?')) {
    const value = !phrase || ATOMS.test(text) ? text : `"${text.replace(/["\\]/g, '\\$&')}"`;
    const folded = fold(name, value + after);
    if (folded !== undefined) return folded;
  }
  return field(name, encodedWords(text, SOFT - name.length - 2).join(' ') + after);
}

/** `Name: value` folded before a space wherever the line would pass 78 characters, so unfolding
 * gives the value back exactly; undefined when a line would still pass 998. */
function fold(name: string, value: string): string | undefined {
  if (value === '') return `${name}:`;
  // Each piece is one or more spaces and the word after them; a fold goes before a piece.
  const pieces = ` ${value}`.split(/(?<=[^ ])(?= )/);
  const lines: string[] = [];
  let line = `${name}:`;
  for (const [i, piece] of pieces.entries()) {
    if (i > 0 && line.length + piece.length > SOFT) {
      lines.push(line);
      line = piece;
    } else {
      line += piece;
    }
  }
  lines.push(line);
  return lines.every((l) => l.length <= HARD) ? lines.join('\n') : undefined;
}

/** `text` as UTF-8 encoded-words, Q or B (whichever is shorter), each at most 75 characters (the
 * first at most `first`) and each holding whole characters, so each decodes on its own. */
function encodedWords(text: string, first: number): string[] {
  const chars = [...text];
  const q = chars.map((c) => (Q_LITERAL.test(c) ? c : c === ' ' ? '_' : escaped(Buffer.from(c, 'utf8'))));
  const b = base64Length(Buffer.byteLength(text, 'utf8')) < q.join('').length;
  const words: string[] = [];
  let room = Math.min(first, WORD) - WORD_FRAME;
  let run = '';
  let qRun = '';
  let bytes = 0;
  const flush = () => words.push(b ? `=?UTF-8?B?${Buffer.from(run, 'utf8').toString('base64')}?=` : `=?UTF-8?Q?${qRun}?=`);
  for (const [i, c] of chars.entries()) {
    const qc = q[i] ?? '';
    const n = Buffer.byteLength(c, 'utf8');
    if (run !== '' && (b ? base64Length(bytes + n) : qRun.length + qc.length) > room) {
      flush();
      run = '';
      qRun = '';
      bytes = 0;
      room = WORD - WORD_FRAME;
    }
    run += c;
    qRun += qc;
    bytes += n;
  }
  if (run !== '') flush();
  return words;
}

function base64Length(bytes: number): number {
  return Math.ceil(bytes / 3) * 4;
}

/** `=XX` for each byte: the escape Q encoding and quoted-printable share. */
function escaped(bytes: Iterable<number>): string {
  return [...bytes].map((x) => `=${x.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

/** 7bit when the text is printable ASCII in lines of at most 998 octets, else quoted-printable.
 * LF line ends, and the body ends with one. */
function bodyOf(text: string): { encoding: '7bit' | 'quoted-printable'; text: string } {
  const t = text.replace(/\r\n?/g, '\n');
  const lines = (t.endsWith('\n') ? t.slice(0, -1) : t).split('\n');
  if (lines.every((l) => l.length <= HARD && /^[\t\x20-\x7e]*$/.test(l))) return { encoding: '7bit', text: `${lines.join('\n')}\n` };
  return { encoding: 'quoted-printable', text: `${lines.map(quotedPrintable).join('\n')}\n` };
}

/** One line as quoted-printable (RFC 2045 6.7): `=` and anything not printable ASCII escaped, as is
 * a space or tab that ends the line; soft breaks (`=` at the end) keep every line within 76. */
function quotedPrintable(line: string): string {
  const bytes = Buffer.from(line, 'utf8');
  const out: string[] = [];
  let cur = '';
  for (const [i, x] of bytes.entries()) {
    const last = i === bytes.length - 1;
    const token = (x > 32 && x < 127 && x !== 61) || ((x === 32 || x === 9) && !last) ? String.fromCharCode(x) : escaped([x]);
    if (cur.length + token.length > 75 && !(last && cur.length + token.length <= 76)) {
      out.push(`${cur}=`);
      cur = '';
    }
    cur += token;
  }
  out.push(cur);
  return out.join('\n');
}
