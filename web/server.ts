// `vouch web`: starts the review page on the listen address and prints its one-line login URL,
// or with --hash-password turns a password read on stdin into a hash for web.password_hash.

import type { HomePaths } from '../agent/home/home.js';
import { homePaths } from '../agent/home/home.js';
import { UsageError } from '../agent/failure/failure.js';
import { createApp } from './app.js';
import { hashPassword } from './auth.js';

export { buildApp, type AppOptions } from './app.js';
export { hashPassword } from './auth.js';

export interface WebOptions {
  readonly home: HomePaths;
  readonly listen: string | undefined;
  readonly hashPassword: boolean;
}

export interface RunningWeb {
  /** The login URL with the token, e.g. http://127.0.0.1:8025/?token=… */
  readonly url: string;
  /** The bare address, e.g. http://127.0.0.1:8025/ */
  readonly base: string;
  close(): Promise<void>;
}

/** Starts the page on a home and returns its login URL (for `vouch web`, the demo and tests).
 * `listen` defaults to web.listen from the config; port 0 picks a free port. `env` is where the
 * config's `~/Maildir` is resolved (give the demo user's HOME). */
export async function startWeb(opts: { readonly home: HomePaths | string; readonly listen?: string; readonly env?: NodeJS.ProcessEnv }): Promise<RunningWeb> {
  const paths = typeof opts.home === 'string' ? homePaths(opts.home) : opts.home;
  const handle = await createApp({
    home: paths,
    ...(opts.listen !== undefined ? { listen: opts.listen } : {}),
    ...(opts.env !== undefined ? { env: opts.env } : {}),
  });
  const { app, listen } = handle;
  try {
    await app.listen({ host: listen.host, port: listen.port, listenTextResolver: () => '' });
  } catch (err) {
    await app.close().catch(() => undefined);
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError(`${listen.host}:${listen.port} is already in use; choose another with --listen`);
    if (code === 'EADDRNOTAVAIL' || code === 'EACCES') throw new UsageError(`cannot listen on ${listen.host}:${listen.port} (${code})`);
    throw err;
  }
  const addr = app.server.address();
  if (addr !== null && typeof addr === 'object') handle.setPort(addr.port);
  const shown = listen.host === '0.0.0.0' || listen.host === '::' ? '127.0.0.1' : listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  const base = `http://${shown}:${listen.port}/`;
  return { url: `${base}?token=${encodeURIComponent(handle.token)}`, base, close: () => app.close() };
}

export async function runWeb(opts: WebOptions): Promise<void> {
  if (opts.hashPassword) {
    const password = await readPassword();
    if (password === '') throw new UsageError('no password given on stdin');
    console.log(await hashPassword(password));
    return;
  }
  const web = await startWeb({ home: opts.home, ...(opts.listen !== undefined ? { listen: opts.listen } : {}) });
  console.log(web.url);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await web.close();
}

/** The password: one line typed at a terminal (not echoed), or all of stdin minus its line end. */
async function readPassword(): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const c of stdin) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  }
  process.stderr.write('Password: ');
  stdin.setRawMode(true);
  stdin.resume();
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (fn: () => void) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      fn();
    };
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(() => resolve(text));
        if (ch === '\u0003') return done(() => reject(new UsageError('cancelled')));
        if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
        else text += ch;
      }
    };
    stdin.on('data', onData);
  });
}
