// A writer thread of `vouch serve` (writers.ts): runs each direct delivery's claim and Maildir
// write (journal.ts deliverOnce, the code `vouch deliver` runs) with blocking calls, one delivery at
// a time, and answers when it is durable or has failed.

import { parentPort, threadId } from 'node:worker_threads';
import { setSeries } from '../maildir/maildir.js';
import { deliverOnce, type OnceJob } from '../store/journal.js';
import type { Written } from './writers.js';

setSeries(threadId);

const port = parentPort;
port?.on('message', (job: OnceJob) => {
  let answer: Written;
  try {
    deliverOnce(job);
    answer = { ok: true };
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    answer = { ok: false, message: String(e?.message ?? err), code: typeof e?.code === 'string' ? e.code : undefined };
  }
  port.postMessage(answer);
});
