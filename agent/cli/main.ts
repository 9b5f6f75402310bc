// The `vouch` command. `vouch deliver` is dispatched before anything else is loaded (qmail starts
// it once per message); every other command goes through commander and loads what it uses.
// Built twice: by tsc (dist/agent/main.js, the fallback) and by esbuild into the one CommonJS file
// that dist/agent/cli.js runs from V8's code cache (see launch.cts and scripts/postbuild.js).

import type { Mta } from '../failure/failure.js';

const argv = process.argv.slice(2);

/** The delivery fast path: `vouch [--home DIR] deliver [--mta M] [--home DIR]`, parsed by hand. */
function deliverArgs(args: readonly string[]): { home: string | undefined; mta: Mta | undefined } | undefined {
  let home: string | undefined;
  let mta: string | undefined;
  let sawDeliver = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (a === 'deliver' && !sawDeliver) sawDeliver = true;
    else if (a === '--home' || a === '--mta') {
      const v = args[++i];
      if (v === undefined) return undefined;
      if (a === '--home') home = v;
      else mta = v;
    } else if (a.startsWith('--home=')) home = a.slice(7);
    else if (a.startsWith('--mta=')) mta = a.slice(6);
    else return undefined;
  }
  if (!sawDeliver) return undefined;
  if (mta !== undefined && mta !== 'qmail' && mta !== 'postfix' && mta !== 'procmail') return undefined;
  return { home, mta: mta as Mta | undefined };
}

/** The MTA to answer when vouch cannot even start: the one named, else the one the environment
 * shows (qmail-local sets DTLINE/RPLINE); exit 1 would make Postfix bounce. */
function startFailure(mta: Mta | undefined): never {
  const env = process.env;
  const qmail = mta === 'qmail' || (mta === undefined && (env['DTLINE'] !== undefined || env['RPLINE'] !== undefined || env['DOMAIN'] === undefined));
  process.stdout.write('vouch: cannot start (#4.3.0)\n');
  process.exit(qmail ? 111 : 75);
}

const fast = deliverArgs(argv);
if (fast) {
  import('../deliver/deliver.js').then(
    ({ main }) => main({ home: fast.home, mta: fast.mta, env: process.env, now: Date.now }),
    (err: unknown) => {
      if (process.env['VOUCH_DEBUG']) process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
      startFailure(fast.mta);
    },
  );
} else {
  // `vouch serve` waits on many stores' commits (each an fsync of its WAL) at once in libuv's thread
  // pool: sized before anything (the module loader among them) starts it. Direct deliveries have
  // writer threads of their own (serve/writers.ts).
  if (argv.includes('serve')) process.env['UV_THREADPOOL_SIZE'] ??= '32';
  import('./commands.js').then(
    ({ run }) => run(process.argv),
    (err: unknown) => {
      process.stderr.write(`vouch: cannot start: ${String((err as Error)?.message ?? err)}\n`);
      process.exit(1);
    },
  );
}
