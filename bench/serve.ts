// The resident server's measures: P7 (whitelisted 20 KB messages over LMTP, 16 connections, beside
// the raw limit of the same disk), P8 (unknown senders held and challenged over LMTP) and the
// server's RSS with 1,000 homes touched. The server is the built `vouch serve` on a Unix socket.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { initHome, homePaths } from '../agent/home/home.js';
import { parsePattern } from '../agent/mail/address.js';
import { Store } from '../agent/store/store.js';
import { CLI, setConfig } from '../test/helpers.js';
import { lmtpSession, wire, type LmtpClient } from '../test/lmtp.js';
import { makeMessage } from './lib.js';

const PATH = process.env['PATH'] ?? '/usr/bin:/bin';

/** A served user's home under `base` (BASE/example.org/USER/.vouch), made as `vouch init --home`. */
export async function servedHome(base: string, user: string, config: Parameters<typeof setConfig>[1] = {}, white: readonly string[] = []): Promise<{ dir: string; maildir: string }> {
  const folder = join(base, 'example.org', user);
  mkdirSync(folder, { recursive: true });
  const dir = join(folder, '.vouch');
  initHome(homePaths(dir), `${user}@example.org`, { HOME: folder, USER: user });
  // No DNS here: the authentication policy is P2A's measure, not the server's.
  setConfig(dir, { identity: { delimiter: '+' }, challenge: { require: 'none' } });
  setConfig(dir, config);
  const store = await Store.open(join(dir, 'vouch.db'), { create: true });
  try {
    if (white.length > 0) await store.addPatterns('white', white.map((w) => parsePattern(w)));
    else await store.repairListMap();
  } finally {
    await store.close();
  }
  return { dir, maildir: join(folder, 'Maildir') };
}

export interface Served {
  readonly child: ChildProcess;
  readonly sock: string;
  /** VmRSS and VmHWM of the server, in bytes. */
  rss(): { rss: number; peak: number };
  stop(): Promise<void>;
}

/** Starts `vouch serve` for BASE/%d/%u/.vouch on a socket in `base`. */
export async function startServe(base: string, extra: readonly string[] = []): Promise<Served> {
  const sock = join(base, 'lmtp.sock');
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', `unix:${sock}`, '--homes', join(base, '%d', '%u', '.vouch'), ...extra], {
    env: { PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      out += d.toString();
      if (out.includes('serving LMTP')) resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`vouch serve exited ${code}: ${out}`)));
  });
  // The log lines are read and dropped (a full pipe would stall the server).
  child.stdout?.resume();
  return {
    child,
    sock,
    rss() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
      return { rss: kb('VmRSS'), peak: kb('VmHWM') };
    },
    stop() {
      return new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
    },
  };
}

/** Sends `jobs` over `width` connections (each kept open, as an MTA's connection cache does), one
 * transaction at a time each; returns the wall time and the replies that were not 250. */
export async function pump(sock: string, width: number, jobs: readonly { from: string; to: readonly string[]; data: Buffer }[]): Promise<{ ms: number; bad: string[] }> {
  const bad: string[] = [];
  let next = 0;
  const clients: LmtpClient[] = await Promise.all(Array.from({ length: width }, () => lmtpSession({ path: sock })));
  const start = process.hrtime.bigint();
  await Promise.all(
    clients.map(async (c) => {
      while (next < jobs.length) {
        const j = jobs[next++];
        if (!j) break;
        c.write(`MAIL FROM:<${j.from}>\r\n${j.to.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`);
        const head = await c.replies(2 + j.to.length);
        if (head.some((r) => r.code >= 400)) {
          bad.push(head.map((r) => `${r.code} ${r.text}`).join('; '));
          continue;
        }
        c.write(j.data);
        for (const r of await c.replies(j.to.length)) if (r.code !== 250) bad.push(`${r.code} ${r.text}`);
      }
    }),
  );
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  for (const c of clients) c.close();
  return { ms, bad };
}

/** A message on the wire, with its final dot. */
export function onWire(from: string, id: string, size = 20 * 1024): Buffer {
  return Buffer.concat([wire(makeMessage({ from, id, size })), Buffer.from('.\r\n')]);
}

/** The disk's own limit: `writers` threads each delivering `size`-byte files into one Maildir as
 * fast as they can (tmp, write, fsync, link into new/, unlink, fsync new/), and nothing else, for
 * `ms`. Messages per second. */
export async function diskLimit(dir: string, writers: number, size: number, ms: number): Promise<number> {
  for (const sub of ['tmp', 'new', 'cur']) mkdirSync(join(dir, sub), { recursive: true });
  const code = `
const { parentPort, workerData } = require('node:worker_threads');
const fs = require('node:fs');
const path = require('node:path');
const { dir, id, size, ms } = workerData;
const bytes = Buffer.alloc(size, 0x61);
const end = Date.now() + ms;
let n = 0;
while (Date.now() < end) {
  const name = id + '.' + n;
  const tmp = path.join(dir, 'tmp', name);
  const fd = fs.openSync(tmp, 'wx', 0o600);
  fs.writeSync(fd, bytes);
  fs.fsyncSync(fd);
  fs.closeSync(fd);
  fs.linkSync(tmp, path.join(dir, 'new', name));
  fs.unlinkSync(tmp);
  const d = fs.openSync(path.join(dir, 'new'), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  fs.fsyncSync(d);
  fs.closeSync(d);
  n++;
}
parentPort.postMessage(n);
`;
  const counts = await Promise.all(
    Array.from(
      { length: writers },
      (_, id) =>
        new Promise<number>((resolve, reject) => {
          const w = new Worker(code, { eval: true, workerData: { dir, id, size, ms } });
          w.once('message', (n: number) => resolve(n));
          w.once('error', reject);
        }),
    ),
  );
  return (counts.reduce((a, b) => a + b, 0) * 1000) / ms;
}
