// The sendmail program of `vouch serve`'s challenges, started from a thread of its own
// (spawner-thread.ts): fork and exec of a process the server's size hold the calling thread for
// milliseconds (about 2–5 ms here, more than the rest of a held delivery), which on the event loop
// would stall every other delivery and connection meanwhile. The child runs as `spawnAwaited` runs
// it (spawnSync's contract: input, timeout, kill signal; status, signal, error), and the delivery
// waits for its end as before: the challenge is sent, or its failure noted, before the 250.

import { Worker } from 'node:worker_threads';
import type { SpawnSyncOptionsWithBufferEncoding, SpawnSyncReturns } from 'node:child_process';

/** One child to run (spawner-thread.ts answers with a Done). */
export interface Job {
  readonly command: string;
  readonly args: readonly string[];
  readonly input: Uint8Array;
  readonly timeout: number | undefined;
  readonly killSignal: NodeJS.Signals | number | undefined;
}

/** How the child ended, or why the thread could not run it. */
export type Done =
  | { readonly id: number; readonly ok: true; readonly pid: number; readonly status: number | null; readonly signal: NodeJS.Signals | null; readonly error?: { readonly message: string; readonly code: string | undefined } }
  | { readonly id: number; readonly ok: false; readonly message: string };

/** Threads that start children: a fork blocks its thread until the child has exec'd (about 4 ms on
 * a loaded machine), so one thread would cap the challenges at a few hundred a second. */
const THREADS = 3;

export class Spawner {
  readonly #lanes = Array.from({ length: THREADS }, () => new Lane());

  /** spawnSync's contract without holding the event loop. */
  spawn = async (command: string, args: readonly string[], options: SpawnSyncOptionsWithBufferEncoding): Promise<SpawnSyncReturns<Buffer>> => {
    // A buffer of its own, handed to the thread without a copy.
    const input = new Uint8Array(options.input === undefined ? 0 : (options.input as Uint8Array).length);
    if (options.input !== undefined) input.set(options.input as Uint8Array);
    // The thread with the fewest children in flight (the first ones first: most servers use one).
    let lane = this.#lanes[0] as Lane;
    for (const l of this.#lanes) if (l.pending < lane.pending) lane = l;
    const d = await lane.run({ command, args, input, timeout: options.timeout, killSignal: options.killSignal });
    // The thread itself failed: as if the program could not be started (the challenge's failure is
    // noted, the message stays held).
    if (!d.ok) throw new Error(d.message);
    const error = d.error === undefined ? undefined : Object.assign(new Error(d.error.message), d.error.code === undefined ? {} : { code: d.error.code });
    return { pid: d.pid, output: [], stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), status: d.status, signal: d.signal, ...(error ? { error } : {}) };
  };

  /** Ends the threads (once the server's deliveries have answered). */
  async close(): Promise<void> {
    await Promise.all(this.#lanes.map((l) => l.close()));
  }
}

/** One spawner thread, started at its first job, and the jobs it has not answered. */
class Lane {
  readonly #pending = new Map<number, (d: Done) => void>();
  #worker: Worker | undefined;
  #next = 0;

  get pending(): number {
    return this.#pending.size;
  }

  run(job: Job): Promise<Done> {
    const w = (this.#worker ??= this.#start());
    const id = ++this.#next;
    return new Promise<Done>((resolve) => {
      this.#pending.set(id, resolve);
      w.postMessage({ id, job }, [job.input.buffer as ArrayBuffer]);
    });
  }

  #start(): Worker {
    const w = new Worker(new URL('./spawner-thread.js', import.meta.url));
    // The server's sockets keep the process alive; an idle thread never does.
    w.unref();
    w.on('message', (d: Done) => {
      const p = this.#pending.get(d.id);
      this.#pending.delete(d.id);
      p?.(d);
    });
    // A thread that dies fails what it held and is started afresh by the next job.
    const gone = (why: string) => {
      if (this.#worker === w) this.#worker = undefined;
      for (const [id, p] of this.#pending) p({ id, ok: false, message: why });
      this.#pending.clear();
    };
    w.on('error', (err) => gone(`the spawner thread failed: ${err.message}`));
    w.on('exit', (code) => gone(`the spawner thread exited (${code})`));
    return w;
  }

  async close(): Promise<void> {
    const w = this.#worker;
    this.#worker = undefined;
    if (w !== undefined) await w.terminate();
  }
}
