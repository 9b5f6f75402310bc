// The spawner thread of `vouch serve` (spawner.ts): runs each sendmail child with spawnAwaited, so
// the fork and exec hold this thread, not the server's event loop.

import { parentPort } from 'node:worker_threads';
import { spawnAwaited } from '../challenge/transport.js';
import type { Done, Job } from './spawner.js';

const port = parentPort;
if (port !== null) {
  port.on('message', ({ id, job }: { id: number; job: Job }) => {
    spawnAwaited(job.command, job.args, {
      input: job.input,
      ...(job.timeout === undefined ? {} : { timeout: job.timeout }),
      ...(job.killSignal === undefined ? {} : { killSignal: job.killSignal }),
    }).then(
      (r) => {
        const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
        const error = r.error === undefined ? {} : { error: { message: r.error.message, code: typeof code === 'string' ? code : undefined } };
        port.postMessage({ id, ok: true, pid: r.pid, status: r.status, signal: r.signal, ...error } satisfies Done);
      },
      (err: unknown) => port.postMessage({ id, ok: false, message: String((err as Error)?.message ?? err) } satisfies Done),
    );
  });
}
