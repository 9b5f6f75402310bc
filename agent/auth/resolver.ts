// The DNS resolver the checks share: node:dns over `[dns] servers` (the system's when none), with
// one time budget for all the queries of a delivery. Past the budget every query fails at once as
// a timeout and the ones in flight are cancelled, so a dead resolver costs a delivery at most the
// budget, never the MTA's patience.

import { promises as dns } from 'node:dns';

/** The resolver function mailauth takes: (name, rrtype) → what dns.promises.resolve answers. */
export type ResolveFn = (name: string, rrtype: string) => Promise<unknown>;

export interface BudgetResolver {
  readonly resolve: ResolveFn;
  /** Resolves when the budget is spent. */
  readonly expired: Promise<void>;
  /** True once a query failed for a reason other than "no such name / no such record". */
  temperror(): boolean;
  /** Ends the budget early (the work is done): cancels what is left and clears the timer. */
  close(): void;
}

/** Errors that are answers: the name or the record does not exist. */
const ANSWERS = new Set(['ENOTFOUND', 'ENODATA']);

export function budgetResolver(servers: readonly string[], budgetMs: number): BudgetResolver {
  // c-ares gives up on one server after `timeout` ms; the budget bounds the whole.
  const r = new dns.Resolver({ timeout: Math.max(100, Math.min(budgetMs, 2000)), tries: 2 });
  if (servers.length > 0) r.setServers([...servers]);
  let over = false;
  let spent = false;
  let failed = false;
  let timer: NodeJS.Timeout | undefined;
  let done: () => void = () => undefined;
  const expired = new Promise<void>((resolve) => {
    done = resolve;
    timer = setTimeout(() => {
      over = true;
      spent = true;
      r.cancel();
      resolve();
    }, budgetMs);
  });
  const timeout = (name: string) => Object.assign(new Error(`DNS timeout for ${name.slice(0, 200)}`), { code: 'ETIMEOUT' });
  const resolve: ResolveFn = async (name, rrtype) => {
    if (over) {
      failed = true;
      throw timeout(name);
    }
    try {
      return await r.resolve(name, rrtype);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (ANSWERS.has(code)) throw err;
      failed = true;
      // mailauth knows ETIMEOUT as "temperror"; a cancel at the budget's end is one too.
      if (code === 'ECANCELLED' || over) throw timeout(name);
      throw err;
    }
  };
  return {
    resolve,
    expired,
    temperror: () => failed || spent,
    close: () => {
      clearTimeout(timer);
      if (!over) {
        over = true;
        r.cancel();
      }
      done();
    },
  };
}
