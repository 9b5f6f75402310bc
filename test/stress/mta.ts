// A retrying MTA: runs a vouch command, kills it at a named failpoint or at a random moment, and
// runs it again (sometimes killing the retry too) until it gives an answer that ends the delivery.
// It counts what happened, so a test can show its figures and prove every failpoint fired.

import { runCli, type Run } from './run.js';

export type KillPlan =
  | { readonly kind: 'none' }
  | { readonly kind: 'failpoint'; readonly name: string }
  | { readonly kind: 'random'; readonly ms: number };

export class MtaStats {
  runs = 0;
  firstRuns = 0;
  kills = 0;
  randomKills = 0;
  tempfails = 0;
  readonly failpointKills = new Map<string, number>();
  /** Answers no MTA may ever get: a crash (exit 1), a hard failure (100), a timeout, garbage. */
  readonly bad: string[] = [];

  get retries(): number {
    return this.runs - this.firstRuns;
  }

  summary(): string {
    const fp = [...this.failpointKills].map(([k, v]) => `${k}=${v}`).join(' ');
    return `${this.firstRuns} commands, ${this.runs} runs, ${this.retries} retries, ${this.kills} kills (${this.randomKills} at random moments; failpoints: ${fp}), ${this.tempfails} temporary failures, ${this.bad.length} bad answers`;
  }
}

export interface RetryOptions {
  readonly env: NodeJS.ProcessEnv;
  readonly input?: { readonly file: string } | Buffer | string;
  /** The answer that ends the job (deliver: exit 0 or 99). */
  readonly done: (r: Run) => boolean;
  /** An answer to retry on (deliver: 111 or 75). */
  readonly temporary: (r: Run) => boolean;
  readonly rand: () => number;
  /** Upper bound of a random kill moment, in ms after the spawn. */
  readonly randomMs: number;
  /** Chance that a retry is killed at a random moment too. */
  readonly retryKillRate?: number;
  readonly maxRuns?: number;
}

export interface Done extends Run {
  /** How often this job was killed before its answer. */
  readonly kills: number;
}

/** Runs `args` under `plan` and retries until done; returns the final run. Bad answers are recorded
 * in `stats.bad` and end the job. */
export async function untilDone(args: readonly string[], plan: KillPlan, stats: MtaStats, o: RetryOptions): Promise<Done> {
  stats.firstRuns += 1;
  let kills = 0;
  const maxRuns = o.maxRuns ?? 12;
  const { VOUCH_FAILPOINT: _unset, ...base } = o.env;
  for (let attempt = 1; ; attempt++) {
    const p: KillPlan =
      attempt === 1 ? plan : attempt <= 3 && o.rand() < (o.retryKillRate ?? 0.2) ? { kind: 'random', ms: o.rand() * o.randomMs } : { kind: 'none' };
    const env = p.kind === 'failpoint' ? { ...base, VOUCH_FAILPOINT: p.name } : base;
    const r = await runCli(args, { env, ...(o.input === undefined ? {} : { input: o.input }), ...(p.kind === 'random' ? { killAfterMs: p.ms } : {}) });
    stats.runs += 1;
    if (r.timedOut) {
      stats.bad.push(`${args.join(' ')}: no answer within the time limit`);
      return { ...r, kills };
    }
    if (r.signal === 'SIGKILL') {
      kills += 1;
      stats.kills += 1;
      if (r.killedByUs) stats.randomKills += 1;
      else if (p.kind === 'failpoint') stats.failpointKills.set(p.name, (stats.failpointKills.get(p.name) ?? 0) + 1);
      else {
        stats.bad.push(`${args.join(' ')}: killed by no one we know`);
        return { ...r, kills };
      }
    } else if (o.done(r)) {
      return { ...r, kills };
    } else if (o.temporary(r)) {
      stats.tempfails += 1;
    } else {
      stats.bad.push(`${args.join(' ')}: exit ${r.code} ${r.signal ?? ''} ${(r.stdout + r.stderr).trim().slice(0, 300)}`);
      return { ...r, kills };
    }
    if (attempt >= maxRuns) {
      stats.bad.push(`${args.join(' ')}: still not done after ${maxRuns} runs`);
      return { ...r, kills };
    }
  }
}

/** qmail's reading of a `vouch deliver` answer. */
export const qmailDone = (r: Run): boolean => r.code === 0 || r.code === 99;
export const qmailTemporary = (r: Run): boolean => r.code === 111;
