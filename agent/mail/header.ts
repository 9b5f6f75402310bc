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

/** The first bare address in a From:/Reply-To: style value (`"Bob" <bob@x>` → `bob@x`). */
export function firstAddress(value: string): string | undefined {
  const angle = /<([^<>\s]+@[^<>\s]+)>/.exec(value);
  if (angle?.[1]) return angle[1];
  const bare = /(?:^|[\s,:;])([^\s<>(),;:"]+@[^\s<>(),;:"]+)/.exec(value);
  return bare?.[1];
}

/** A header value made safe to show or to quote in a new header: decoded, control characters
 * (CR and LF among them) replaced by spaces, white space folded, cut to `max` characters. */
export function cleanText(value: string | undefined, max = 200): string {
  if (value === undefined) return '';
  // eslint-disable-next-line no-control-regex
  const text = decodeWords(value).replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ').replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
