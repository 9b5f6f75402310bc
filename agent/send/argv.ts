// The command line of a sendmail-compatible program as mail clients write it (mutt: `-oem -oi --
// RCPT…`, git send-email: `-i RCPT…`, mail(1): `-i RCPT…`, `-t` for recipients from the header), read
// the way getopt-based sendmails (Postfix, sendmail, exim, qmail's wrapper) read it. Pure: the
// argv in, what vouch needs to know out; the real sendmail gets the argv as it was given.

/** Options that take a value, attached (`-fbob@x`, `-oi`) or as the next word (`-f bob@x`). */
const WITH_VALUE = new Set(['A', 'B', 'C', 'F', 'L', 'N', 'O', 'R', 'V', 'X', 'b', 'e', 'f', 'h', 'o', 'p', 'r']);

export interface SendArgs {
  /** `send`: a message on stdin for the recipients. `other`: a mode that sends nothing of the
   * user's (-bp, -bi, -bs, -q, -I…): passed through untouched, nothing learnt. */
  readonly mode: 'send' | 'other';
  /** -t: the recipients are (also) in To, Cc and Bcc. */
  readonly extract: boolean;
  /** -f or -r: the envelope sender, and where in argv its value is (for the tagged rewrite). */
  readonly sender: { readonly value: string; readonly index: number; readonly attached: boolean } | undefined;
  /** -F: the full name for From:. */
  readonly fullName: string | undefined;
  /** The recipients given as arguments. */
  readonly recipients: readonly string[];
  /** A word that starts with '-' after the recipients (GNU getopt would still read it as an
   * option; vouch leaves it where it is for the real sendmail). */
  readonly late: readonly string[];
}

export class SendUsageError extends Error {}

/** Reads the argv after `vouch send`. Throws SendUsageError for an option missing its value. */
export function parseSendArgs(argv: readonly string[]): SendArgs {
  let mode: SendArgs['mode'] = 'send';
  let extract = false;
  let sender: SendArgs['sender'];
  let fullName: string | undefined;
  const recipients: string[] = [];
  const late: string[] = [];
  let i = 0;
  let ended = false;
  for (; i < argv.length; i++) {
    const word = argv[i] ?? '';
    if (word === '--') {
      i++;
      ended = true;
      break;
    }
    if (!word.startsWith('-') || word === '-') break;
    for (let k = 1; k < word.length; k++) {
      const c = word[k] ?? '';
      if (!WITH_VALUE.has(c)) {
        if (c === 't') extract = true;
        else if (c === 'I' || c === 'q') mode = 'other';
        if (c === 'q') break; // -q takes an attached interval (-q1h) or none
        continue;
      }
      const attached = k + 1 < word.length;
      let value: string;
      let index: number;
      if (attached) {
        value = word.slice(k + 1);
        index = i;
      } else {
        const next = argv[i + 1];
        if (next === undefined) throw new SendUsageError(`option -${c} needs a value`);
        value = next;
        index = ++i;
      }
      if (c === 'f' || c === 'r') sender = { value, index, attached };
      else if (c === 'F') fullName = value;
      else if (c === 'b' && value !== 'm') mode = 'other';
      break;
    }
  }
  for (; i < argv.length; i++) {
    const word = argv[i] ?? '';
    if (!ended && word.startsWith('-') && word.length > 1) late.push(word);
    else recipients.push(word);
  }
  return { mode, extract, sender, fullName, recipients, late };
}

/** The argv for the real sendmail: the user's, unchanged but for the envelope sender when it is to
 * be rewritten (in place, or `-f SENDER` in front when none was given). */
export function passThrough(argv: readonly string[], args: SendArgs, sender: string | undefined): string[] {
  if (sender === undefined) return [...argv];
  const out = [...argv];
  const s = args.sender;
  if (s === undefined) return ['-f', sender, ...out];
  if (s.attached) {
    const word = out[s.index] ?? '';
    out[s.index] = word.slice(0, word.length - s.value.length) + sender;
  } else out[s.index] = sender;
  return out;
}

/** The argv for qmail-inject, which knows only -f and -a/-h/-A/-H (anything else is a permanent
 * usage error) and never ends a message at a "." line: -t becomes -h (the header's recipients), or
 * -H with recipients given too (the header's and the arguments'); without -t, -a (the arguments'); -F goes to the environment (QMAILNAME). */
export function qmailInjectArgs(args: SendArgs, sender: string | undefined): { argv: string[]; env: Record<string, string> } {
  const from = sender ?? args.sender?.value;
  const which = !args.extract ? '-a' : args.recipients.length > 0 ? '-H' : '-h';
  const argv = [...(from !== undefined ? ['-f', from] : []), which, '--', ...args.recipients];
  return { argv, env: args.fullName !== undefined ? { QMAILNAME: args.fullName } : {} };
}
