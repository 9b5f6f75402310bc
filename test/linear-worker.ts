// The worker of test/linear.test.ts: one whole delivery (deliverFromEnvironment, in this thread) of the
// message it is given, so the test can end it from outside when it runs past a generous bound
// (a synchronous regular expression cannot be interrupted from inside).

import { parentPort, workerData } from 'node:worker_threads';
import { deliverFromEnvironment } from '../agent/deliver/deliver.js';

interface Job {
  readonly home: string;
  readonly env: NodeJS.ProcessEnv;
  readonly raw: Uint8Array;
  readonly now: number;
}

const job = workerData as Job;
deliverFromEnvironment(Buffer.from(job.raw), { home: job.home, mta: 'qmail', env: job.env, now: () => job.now }).then(
  (r) => parentPort?.postMessage({ ok: true, line: r.line }),
  (err: unknown) => parentPort?.postMessage({ ok: false, line: String((err as Error)?.message ?? err) }),
);
