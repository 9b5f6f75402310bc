// The sendmail program of `vouch serve`'s challenges, started by a small process of its own
// (spawner-process.ts). Forking the server itself would cost far more than the child: fork copies
// the page tables of the server's whole heap, then every page the server writes next faults to be
// its own again, and the calling thread waits until the child has exec'd (2–5 ms here, more than
// the rest of a held delivery, and on the event loop a stall for every other delivery). The child
// runs as `spawnAwaited` runs it (spawnSync's contract: input, timeout, kill signal; status,
// signal, error), and the delivery waits for its end as before: the challenge is sent, or its
// failure noted, before the 250.

import { fork, type ChildProcess, type SpawnSyncOptionsWithBufferEncoding, type SpawnSyncReturns } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** One child to run (spawner-process.ts answers with a Done). */
export interface Job {
  readonly command: string;
  readonly args: readonly string[];
  readonly input: Uint8Array;
  readonly timeout: number | undefined;
  readonly killSignal: NodeJS.Signals | number | undefined;
}

/** How the child ended, or why the spawner could not run it. */
export type Done =
  | { readonly id: number; readonly ok: true; readonly pid: number; readonly status: number | null; readonly signal: NodeJS.Signals | null; readonly error?: { readonly message: string; readonly code: string | undefined } }
  | { readonly id: number; readonly ok: false; readonly message: string };

export class Spawner {
  readonly #pending = new Map<number, (d: Done) => void>();
  #child: ChildProcess | undefined;
  #next = 0;

  /** spawnSync's contract without a fork of the server. */
  spawn = async (command: string, args: readonly string[], options: SpawnSyncOptionsWithBufferEncoding): Promise<SpawnSyncReturns<Buffer>> => {
    const input = options.input === undefined ? new Uint8Array(0) : (options.input as Uint8Array);
    const child = (this.#child ??= this.#start());
    const id = ++this.#next;
    const d = await new Promise<Done>((resolve) => {
      this.#pending.set(id, resolve);
      child.send({ id, job: { command, args, input, timeout: options.timeout, killSignal: options.killSignal } satisfies Job }, (err) => {
        if (err) this.#answer({ id, ok: false, message: `cannot reach the spawner: ${err.message}` });
      });
    });
    // The spawner itself failed: as if the program could not be started (the challenge's failure
    // is noted, the message stays held).
    if (!d.ok) throw new Error(d.message);
    const error = d.error === undefined ? undefined : Object.assign(new Error(d.error.message), d.error.code === undefined ? {} : { code: d.error.code });
    return { pid: d.pid, output: [], stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), status: d.status, signal: d.signal, ...(error ? { error } : {}) };
  };

  #answer(d: Done): void {
    const p = this.#pending.get(d.id);
    this.#pending.delete(d.id);
    p?.(d);
  }

  #start(): ChildProcess {
    const child = fork(fileURLToPath(new URL('./spawner-process.js', import.meta.url)), [], {
      // Not the server's own flags (a profiler, a large heap): a small plain Node.
      execArgv: [],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    child.on('message', (d: Done) => this.#answer(d));
    // A spawner that dies fails what it held and is started afresh by the next challenge.
    const gone = (why: string) => {
      if (this.#child === child) this.#child = undefined;
      for (const id of [...this.#pending.keys()]) this.#answer({ id, ok: false, message: why });
    };
    child.on('error', (err) => gone(`the spawner failed: ${err.message}`));
    child.on('exit', (code, signal) => gone(`the spawner exited (${signal ?? code})`));
    // Neither the process nor its channel keeps the server alive: its sockets do.
    child.unref();
    (child.channel as { unref?: () => void } | undefined)?.unref?.();
    return child;
  }

  /** Ends the spawner (once the server's deliveries have answered). */
  async close(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Waited for: the server's stop ends only once its spawner is gone.
    child.ref();
    if (child.connected) child.disconnect();
    else child.kill();
    await exited;
  }
}
