// What the classifier's answer means for a held message, and what learning a decision takes: pure
// functions of bogofilter's output and the config. The program itself is run by agent/classify/.

export type ClassVerdict = 'spam' | 'ham' | 'unsure';
export type Learned = 'ham' | 'spam';

/** What one classification came to. `failed` covers a missing program, a timeout, a crash and
 * output that is not bogofilter's terse verdict: all of them leave the normal rules in charge. */
export type ClassifierAnswer =
  | { readonly kind: 'verdict'; readonly verdict: ClassVerdict; readonly score: number }
  /** No word list yet: bogofilter would only say "unsure", so it is not asked. */
  | { readonly kind: 'untrained' }
  | { readonly kind: 'failed'; readonly why: string };

/** How the program ended, as the runner saw it. */
export interface ProgramEnd {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly timedOut: boolean;
  /** The spawn failed (ENOENT, EACCES, …). */
  readonly error?: string;
}

const LETTERS: Readonly<Record<string, ClassVerdict>> = { S: 'spam', H: 'ham', U: 'unsure' };
/** bogofilter's exit status for each verdict (0 spam, 1 ham, 2 unsure; 3 is an error). */
const EXIT: Readonly<Record<ClassVerdict, number>> = { spam: 0, ham: 1, unsure: 2 };
/** `-T` prints `%1.1c %f`: one letter, a space, the spamicity. Nothing else is believed. */
const TERSE = /^([SHU]) ([01](?:\.\d{1,12})?(?:e[-+]?\d{1,3})?|\d\.\d{1,12}e[-+]?\d{1,3})\r?\n?$/;

/** Reads `bogofilter -T`'s answer; anything but a well-formed verdict that agrees with the exit
 * status is a failure. */
export function readTerse(end: ProgramEnd): ClassifierAnswer {
  if (end.error === 'too much output') return { kind: 'failed', why: 'unreadable answer (too long)' };
  if (end.error !== undefined) return { kind: 'failed', why: end.error === 'ENOENT' ? 'program not found' : `cannot run (${end.error})` };
  if (end.timedOut) return { kind: 'failed', why: 'timed out' };
  if (end.signal !== null) return { kind: 'failed', why: `killed by ${end.signal}` };
  if (end.code === 3) return { kind: 'failed', why: 'error (exit 3)' };
  const m = TERSE.exec(end.stdout);
  const verdict = m ? LETTERS[m[1] ?? ''] : undefined;
  const score = m ? Number(m[2]) : NaN;
  if (verdict === undefined || !(score >= 0 && score <= 1)) return { kind: 'failed', why: 'unreadable answer' };
  if (end.code !== EXIT[verdict]) return { kind: 'failed', why: `answer and exit ${String(end.code)} disagree` };
  return { kind: 'verdict', verdict, score };
}

export interface ClassifierOutcome {
  /** Why no challenge goes out (`classifier: spam 0.98`), or undefined: the normal rules go on. */
  readonly suppress: string | undefined;
  /** Held as spam: a confirmation never releases it. */
  readonly suspect: boolean;
  /** What is stored under signals.classifier. */
  readonly signal: Readonly<Record<string, unknown>>;
  /** For the delivery's log line when the classifier could not answer. */
  readonly failure: string | undefined;
}

/** The score as it is shown: two decimals, never rounded up to a certainty it did not give. */
export function shownScore(score: number): string {
  return (Math.floor(score * 100) / 100).toFixed(2);
}

/** What the answer means for the held message, given which verdicts suppress the challenge. */
export function classifierOutcome(a: ClassifierAnswer, suppressOn: readonly ClassVerdict[]): ClassifierOutcome {
  switch (a.kind) {
    case 'untrained':
      return { suppress: undefined, suspect: false, signal: { verdict: 'unsure', untrained: true }, failure: undefined };
    case 'failed':
      return { suppress: undefined, suspect: false, signal: { verdict: 'error', error: a.why }, failure: `classifier ${a.why}` };
    case 'verdict': {
      const signal = { verdict: a.verdict, score: a.score };
      if (a.verdict === 'ham' || !suppressOn.includes(a.verdict)) return { suppress: undefined, suspect: false, signal, failure: undefined };
      return { suppress: `classifier: ${a.verdict} ${shownScore(a.score)}`, suspect: a.verdict === 'spam', signal, failure: undefined };
    }
  }
}

/** The classifier signal of a held message as the CLI and the web page show it, or undefined. */
export function describeSignal(signals: Readonly<Record<string, unknown>>): { verdict: string; score: number | undefined; text: string } | undefined {
  const c = signals['classifier'];
  if (c === null || typeof c !== 'object') return undefined;
  const { verdict, score, untrained, error } = c as Record<string, unknown>;
  if (typeof verdict !== 'string') return undefined;
  const s = typeof score === 'number' && score >= 0 && score <= 1 ? score : undefined;
  const text =
    verdict === 'error' ? `not classified (${typeof error === 'string' ? error : 'error'})` : untrained === true ? 'unsure (no word list yet)' : `${verdict}${s === undefined ? '' : ` ${shownScore(s)}`}`;
  return { verdict, score: s, text };
}

/** bogofilter's registration flags: learn or unlearn as ham or spam. */
export type LearnFlag = '-n' | '-s' | '-N' | '-S';

/** The steps that bring a message from what the word list holds for it to the verdict wanted:
 * nothing when it is there already, the earlier verdict unlearned first when it contradicts. */
export function learnSteps(learned: Learned | null | undefined, want: Learned): readonly LearnFlag[] {
  if (learned === want) return [];
  const learn: LearnFlag = want === 'ham' ? '-n' : '-s';
  if (learned === 'ham') return ['-N', learn];
  if (learned === 'spam') return ['-S', learn];
  return [learn];
}

/** Whether a whitelisted delivery is kept as a ham sample: 1 in `every`, chosen by the message's
 * delivery key (`<length>-<hex hash>`), so a retried delivery makes the same choice. */
export function sampled(key: string, every: number): boolean {
  if (every <= 0) return false;
  if (every === 1) return true;
  const hash = key.slice(key.lastIndexOf('-') + 1, key.lastIndexOf('-') + 9);
  const n = /^[0-9a-f]{8}$/.test(hash) ? Number.parseInt(hash, 16) : NaN;
  return Number.isFinite(n) && n % every === 0;
}
