// The writer threads of `vouch serve`: each direct delivery (whitelisted, tagged, junk) is written
// by one of them with blocking calls (writer-thread.ts), as `vouch deliver` writes it. The event
// loop hands a delivery over and gets one answer back: one round trip, where awaiting each step on
// libuv's thread pool took a dozen (open, write, fsync, close, link, unlink, fsync of the folder,
// and the claim's own), each a wakeup of a pool thread and of the loop. Concurrent fsyncs from the
// threads are committed together by the file system's journal (group commit), never skipped.

import { Worker } from 'node:worker_threads';
import type { OnceJob } from '../store/journal.js';

/** A writer thread's answer to one job. */
export type Written = { readonly ok: true } | { readonly ok: false; readonly message: string; readonly code: string | undefined };

interface Waiting {
  readonly job: OnceJob;
  readonly resolve: () => void;
  readonly reject: (err: Error) => void;
}

interface Thread {
  readonly worker: Worker;
  /** The job it writes now. */
  current: Waiting | undefined;
}

export class Writers {
  readonly #size: number;
  readonly #threads = new Set<Thread>();
  readonly #idle: Thread[] = [];
  readonly #queue: Waiting[] = [];
  #closed = false;

  /** Up to `size` threads, started as deliveries need them. */
  constructor(size: number) {
    this.#size = Math.max(1, size);
  }

  /** journal.ts deliverOnce in a writer thread; settles once the message is durable or has failed
   * (the error carries the errno code, as the blocking call would throw it). */
  run = (job: OnceJob): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      if (this.#closed) return reject(new Error('the writer threads are closed'));
      const w: Waiting = { job, resolve, reject };
      const t = this.#idle.pop() ?? (this.#threads.size < this.#size ? this.#start() : undefined);
      if (t === undefined) this.#queue.push(w);
      else this.#give(t, w);
    });

  /** Threads running now. */
  get size(): number {
    return this.#threads.size;
  }

  #give(t: Thread, w: Waiting): void {
    t.current = w;
    // A thread keeps the process alive while it writes, not while it waits for work.
    t.worker.ref();
    t.worker.postMessage(w.job);
  }

  #next(t: Thread): void {
    t.current = undefined;
    const w = this.#queue.shift();
    if (w !== undefined) this.#give(t, w);
    else {
      t.worker.unref();
      this.#idle.push(t);
    }
  }

  #start(): Thread {
    const worker = new Worker(new URL('./writer-thread.js', import.meta.url), {
      // Not the server's own flags (a profiler, a large heap). The thread's heap holds one job (the
      // message itself is in memory it shares with the server): a small young generation; the old
      // one may grow for a retry that lists a cur/ of hundreds of thousands of names.
      execArgv: [],
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 256 },
      stdout: false,
      stderr: false,
    });
    const t: Thread = { worker, current: undefined };
    this.#threads.add(t);
    worker.on('message', (a: Written) => {
      const w = t.current;
      if (w === undefined) return;
      if (a.ok) w.resolve();
      else w.reject(Object.assign(new Error(a.message), a.code === undefined ? {} : { code: a.code }));
      this.#next(t);
    });
    // A thread that dies fails the delivery it held (451: the client retries it) and is replaced
    // by the next delivery that needs one.
    const gone = (why: string) => {
      if (!this.#threads.delete(t)) return;
      const i = this.#idle.indexOf(t);
      if (i >= 0) this.#idle.splice(i, 1);
      t.current?.reject(new Error(why));
      t.current = undefined;
      const w = this.#queue.shift();
      if (w !== undefined && !this.#closed) this.#give(this.#start(), w);
    };
    worker.on('error', (err) => gone(`a writer thread failed: ${err.message}`));
    worker.on('exit', (code) => gone(`a writer thread exited (${code})`));
    return t;
  }

  /** Ends the threads (once the server's deliveries have answered). */
  async close(): Promise<void> {
    this.#closed = true;
    for (const w of this.#queue.splice(0)) w.reject(new Error('the writer threads are closed'));
    await Promise.all([...this.#threads].map((t) => t.worker.terminate()));
  }
}
