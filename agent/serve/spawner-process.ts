// The spawner of `vouch serve` (spawner.ts): a small process of its own that starts each sendmail
// child with spawnAwaited and reports how it ended. It takes no signal from a terminal or a
// supervisor (the server decides when it ends) and exits once the server is gone (its stop, or a
// kill) and every child it started has ended: a child is never left with half its input.

import { spawnAwaited } from '../challenge/transport.js';
import type { Done, Job } from './spawner.js';

for (const signal of ['SIGINT', 'SIGHUP', 'SIGTERM'] as const) process.on(signal, () => undefined);

let running = 0;
let orphaned = false;

const send = (d: Done) => {
  running -= 1;
  if (process.connected) process.send?.(d);
  if (orphaned && running === 0) process.exit(0);
};

process.on('message', ({ id, job }: { id: number; job: Job }) => {
  running += 1;
  spawnAwaited(job.command, job.args, {
    input: job.input,
    ...(job.timeout === undefined ? {} : { timeout: job.timeout }),
    ...(job.killSignal === undefined ? {} : { killSignal: job.killSignal }),
  }).then(
    (r) => {
      const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
      const error = r.error === undefined ? {} : { error: { message: r.error.message, code: typeof code === 'string' ? code : undefined } };
      send({ id, ok: true, pid: r.pid, status: r.status, signal: r.signal, ...error });
    },
    (err: unknown) => send({ id, ok: false, message: String((err as Error)?.message ?? err) }),
  );
});

process.on('disconnect', () => {
  orphaned = true;
  if (running === 0) process.exit(0);
});
