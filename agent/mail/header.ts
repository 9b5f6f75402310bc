// A bounded, forgiving read of a message's header block straight from the raw bytes. Delivery
// decides on this alone, so the whitelisted path never loads a MIME parser.

import { isUtf8 } from 'node:buffer';

export interface HeaderField {
  /** Lower-case field name. */
  readonly name: string;
  /** The unfolded value, leading white space removed, undecoded. */
  readonly value: string;
}

export class Headers {
  readonly fields: readonly HeaderField[];
  /** Byte offset where the body starts (after the blank line), or the raw length if there is none. */
  readonly bodyOffset: number;

  constructor(fields: readonly HeaderField[], bodyOffset: number) {
    this.fields = fields;
    this.bodyOffset = bodyOffset;
  }

  get(name: string): string | undefined {
    const n = name.toLowerCase();
    return this.fields.find((f) => f.name === n)?.value;
  }

  all(name: string): string[] {
    const n = name.toLowerCase();
    return this.fields.filter((f) => f.name === n).map((f) => f.value);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
}

/** Text from bytes of unknown charset: UTF-8 when it is valid, otherwise Latin-1 (every byte kept).
 * (buffer.isUtf8 rather than a fatal TextDecoder, whose first construction costs a delivery
 * about 0.3 ms.) */
export function bytesToText(bytes: Uint8Array): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return b.toString(isUtf8(b) ? 'utf8' : 'latin1');
}

/** Finds the end of the header block: the first empty line (LF or CRLF endings). */
export function headerEnd(raw: Uint8Array, limit: number): { end: number; body: number } {
  const max = Math.min(raw.length, limit);
  if (raw[0] === 0x0a) return { end: 0, body: 1 };
  if (raw[0] === 0x0d && raw[1] === 0x0a) return { end: 0, body: 2 };
  for (let i = 0; i < max; i++) {
    if (raw[i] !== 0x0a) continue;
    if (raw[i + 1] === 0x0a) return { end: i + 1, body: i + 2 };
    if (raw[i + 1] === 0x0d && raw[i + 2] === 0x0a) return { end: i + 1, body: i + 3 };
  }
  return { end: max, body: raw.length <= limit ? raw.length : max };
}

/** Reads at most `limit` bytes of header. Lines that are not fields (an mbox From_ line, garbage)
 * are skipped; folded lines are joined; nothing here throws on bad input. */
export function readHeaders(raw: Uint8Array, limit = 1024 * 1024): Headers {
  const { end, body } = headerEnd(raw, limit);
  const text = bytesToText(raw.subarray(0, end));
  const fields: HeaderField[] = [];
  let name: string | undefined;
  let value = '';
  const flush = () => {
    if (name !== undefined) fields.push({ name, value: value.replace(/\r?\n/g, '').trim() });
    name = undefined;
  };
  for (const line of text.split('\n')) {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    if ((l.startsWith(' ') || l.startsWith('\t')) && name !== undefined) {
      value += l;
      continue;
    }
    flush();
    const colon = l.indexOf(':');
    if (colon <= 0) continue;
    const n = l.slice(0, colon);
    if (!/^[\x21-\x39\x3b-\x7e]+$/.test(n)) continue;
    name = n.toLowerCase();
    value = l.slice(colon + 1);
  }
  flush();
  return new Headers(fields, body);
}

/** Decodes RFC 2047 encoded words (B and Q, any charset Node knows); undecodable words stay as they are. */
export function decodeWords(value: string): string {
  return value
    .replace(/(=\?[^?\s]+\?[bqBQ]\?[^?\s]*\?=)\s+(?==\?)/g, '$1')
    .replace(/=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bqBQ])\?([^?\s]*)\?=/g, (word, charset: string, enc: string, data: string) => {
      try {
        const bytes =
          enc.toLowerCase() === 'b'
            ? Buffer.from(data, 'base64')
            : Buffer.from(
                data.replace(/_/g, ' ').replace(/=([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
                'latin1',
              );
        return new TextDecoder(charset.toLowerCase(), { fatal: false }).decode(bytes);
      } catch {
        return word;
      }
    });
}

/** White space as a regular expression's \s sees it. */
function isSpace(c: number): boolean {
  return (
    (c >= 9 && c <= 13) || c === 32 || c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
    c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff
  );
}

const LT = 0x3c;
const GT = 0x3e;
const AT = 0x40;

/** Ends a bare address: white space and `<>(),;:"`. */
function endsBare(c: number): boolean {
  return isSpace(c) || c === LT || c === GT || c === 0x28 || c === 0x29 || c === 0x2c || c === 0x3b || c === 0x3a || c === 0x22;
}

/** May stand right before a bare address: white space and `,:;`. */
function opensBare(c: number): boolean {
  return isSpace(c) || c === 0x2c || c === 0x3a || c === 0x3b;
}

/** Counts the characters a scan looks at (for the tests' proof that the work is linear). */
export interface Meter {
  steps: number;
}

/** The first bare address in a From:/Reply-To: style value (`"Bob" <bob@x>` → `bob@x`): the first
 * `<local@domain>` (no white space or angle brackets inside), else the first run of address
 * characters holding an `@` that starts the value or follows white space, `,`, `:` or `;`. Each
 * character is looked at a bounded number of times (a regular expression for this backtracked
 * quadratically: 12 s for a 120 KB From:). */
export function firstAddress(value: string, meter?: Meter): string | undefined {
  const n = value.length;
  let steps = 0;
  try {
    // <local@domain>: from each '<', the run up to the next '<', '>' or white space.
    for (let i = value.indexOf('<'); i >= 0; ) {
      let j = i + 1;
      let at = -1;
      for (; j < n; j++) {
        steps++;
        const c = value.charCodeAt(j);
        if (c === LT || c === GT || isSpace(c)) break;
        if (c === AT && at < 0 && j >= i + 2) at = j;
      }
      if (j < n && value.charCodeAt(j) === GT && at >= 0 && at <= j - 2) return value.slice(i + 1, j);
      if (j >= n) break;
      if (value.charCodeAt(j) === LT) i = j;
      else {
        i = value.indexOf('<', j + 1);
        steps += (i < 0 ? n : i) - j;
      }
    }
    // A bare address: each maximal run of address characters, in order.
    for (let s = 0; s < n; ) {
      steps++;
      if (endsBare(value.charCodeAt(s))) {
        s++;
        continue;
      }
      let e = s;
      let at = -1;
      for (; e < n; e++) {
        steps++;
        const c = value.charCodeAt(e);
        if (endsBare(c)) break;
        if (c === AT && at < 0 && e >= s + 1) at = e;
      }
      if ((s === 0 || opensBare(value.charCodeAt(s - 1))) && at >= 0 && at <= e - 2) return value.slice(s, e);
      s = e;
    }
    return undefined;
  } finally {
    if (meter) meter.steps += steps;
  }
}

/** How much of a value cleanText reads for a result of `max` characters: room for encoded words
 * (up to 75 characters for one decoded one) and folded white space. */
export function cleanInput(max: number): number {
  return max * 16 + 256;
}

/** A header value made safe to show or to quote in a new header: decoded, control characters
 * (CR and LF among them) replaced by spaces, white space folded, cut to `max` characters. */
export function cleanText(value: string | undefined, max = 200): string {
  if (value === undefined) return '';
  // Only the start of a long value can reach the result: decoding the rest (a 1 MB Subject of
  // encoded words) would cost a delivery work that is thrown away.
  if (value.length > cleanInput(max)) value = value.slice(0, cleanInput(max));
  // eslint-disable-next-line no-control-regex
  const text = decodeWords(value).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
