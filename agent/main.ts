#!/usr/bin/env node
// The `vouch` command. `vouch deliver` is dispatched before anything else is loaded (qmail starts
// it once per message); every other command goes through commander and loads what it uses.

import type { Mta } from './failure.js';

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

const fast = deliverArgs(argv);
if (fast) {
  const { main } = await import('./deliver.js');
  await main({ home: fast.home, mta: fast.mta, env: process.env, now: Date.now });
} else {
  const { run } = await import('./commands.js');
  await run(process.argv);
}
