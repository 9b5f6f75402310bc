// Message-IDs as a sender writes them in Message-ID, In-Reply-To and References: one linear scan,
// no regular expression, a bounded number of ids. Replies to the user's own mail are found by them.

/** The most ids a message's In-Reply-To and References are read for. */
export const MAX_REFERENCES = 32;

/** The longest id kept (between the angle brackets); RFC 5322 lines are 998 octets at most. */
const MAX_ID = 250;

/** True for a character an id may hold: printable ASCII other than the brackets. */
function idChar(c: number): boolean {
  return c >= 0x21 && c <= 0x7e && c !== 0x3c && c !== 0x3e;
}

/** Every `<left@right>` in `value`, in order, without the brackets: printable ASCII, one `@` or
 * more, at most MAX_ID characters. Anything else (comments, phrases, broken ids) is skipped. Each
 * character is looked at once or twice: linear in the value's length. `keep` bounds the result: the
 * first `keep` ids, or with `last` the last `keep`. */
export function messageIds(value: string, keep: number = MAX_REFERENCES, last = false): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < value.length) {
    const open = value.indexOf('<', i);
    if (open < 0) break;
    let j = open + 1;
    let at = false;
    let ok = true;
    for (; j < value.length; j++) {
      const c = value.charCodeAt(j);
      if (c === 0x3e || c === 0x3c) break;
      if (!idChar(c) || j - open > MAX_ID) {
        ok = false;
        break;
      }
      if (c === 0x40) at = true;
    }
    if (j >= value.length) break;
    if (ok && value.charCodeAt(j) === 0x3e && at && j > open + 1) {
      const id = value.slice(open + 1, j);
      if (!id.startsWith('@') && !id.endsWith('@')) {
        out.push(id);
        if (out.length > keep) {
          if (!last) return out.slice(0, keep);
          out.shift();
        }
      }
    }
    // A broken id: go on from where the scan stopped (a '<' there starts the next try).
    i = value.charCodeAt(j) === 0x3c ? j : j + 1;
  }
  return out;
}

/** The ids a reply names, each once and MAX_REFERENCES in all: In-Reply-To's, then the first of
 * References (the thread's start) and its latest (the nearest ancestors). */
export function replyIds(inReplyTo: readonly string[], references: readonly string[]): string[] {
  const out = new Set<string>();
  for (const v of inReplyTo.slice(0, 2)) for (const id of messageIds(v, 4)) out.add(id);
  for (const v of references.slice(0, 2)) {
    for (const id of messageIds(v, 1)) out.add(id);
    for (const id of messageIds(v, MAX_REFERENCES - 8, true)) out.add(id);
  }
  return [...out].slice(0, MAX_REFERENCES);
}
