// The failure kinds vouch knows, and the one place that turns an outcome into an MTA exit code.
// Anything not recognised here is a temporary failure: the MTA keeps the message and retries.

export type Mta = 'qmail' | 'postfix' | 'procmail';

/** What became of one delivery, as the MTA must hear it. */
export type Outcome = 'done' | 'continue' | 'tempfail';

/** A failure the MTA should retry later. The text is shown to the MTA's log (and possibly a bounce):
 * keep it short, with no paths, keys or message content. */
export class TempFail extends Error {
  readonly status: string;
  constructor(text: string, status = '4.3.0', options?: { cause?: unknown }) {
    super(text, options);
    this.name = 'TempFail';
    this.status = status;
  }
  /** The qmail-style line: `vouch: cannot open the pending store (#4.3.0)`. */
  line(): string {
    return `vouch: ${this.message} (#${this.status})`;
  }
}

/** A bad command line, config value or argument given by the user (never by a sender). */
export class UsageError extends Error {
  constructor(text: string) {
    super(text);
    this.name = 'UsageError';
  }
}

/** A config file that is missing, unreadable or invalid; `key` names the offending key. */
export class ConfigError extends Error {
  readonly key: string | undefined;
  constructor(text: string, key?: string) {
    super(text);
    this.name = 'ConfigError';
    this.key = key;
  }
}

/** The exit code for an outcome. qmail: 0 go on, 99 done, 111 retry. Postfix and procmail know
 * only 0 and 75 (EX_TEMPFAIL): 99, 100, 111 and 1 all bounce there. Never 100 anywhere. */
export function exitCode(mta: Mta, outcome: Outcome): number {
  if (mta === 'qmail') {
    return outcome === 'done' ? 99 : outcome === 'continue' ? 0 : 111;
  }
  return outcome === 'tempfail' ? 75 : 0;
}

/** Maps any thrown value to the TempFail the MTA is told about. Known kinds keep their own text;
 * everything else is "temporary failure" without detail (details go nowhere a sender may read). */
export function asTempFail(err: unknown): TempFail {
  if (err instanceof TempFail) return err;
  if (err instanceof ConfigError) return new TempFail('the configuration is not valid', '4.3.5', { cause: err });
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return new TempFail('the disk is full', '4.3.1', { cause: err });
  if (typeof code === 'string' && code.startsWith('SQLITE')) {
    return new TempFail('cannot use the pending store', '4.3.0', { cause: err });
  }
  return new TempFail('temporary failure', '4.3.0', { cause: err });
}
