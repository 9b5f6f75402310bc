// The built `vouch` spawned the way qmail-local spawns it (the message on stdin as a file, a bare
// environment), optionally killed with SIGKILL after a delay, optionally measured (peak RSS, time).

import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers.js';

export interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** The harness sent the SIGKILL (a random-moment kill), not a failpoint and not the timeout. */
  readonly killedByUs: boolean;
  readonly timedOut: boolean;
  readonly ms: number;
  /** Peak resident set of the child in KB (only with `measure`). */
  readonly maxRssKb: number | undefined;
}

export interface RunOptions {
  readonly env: NodeJS.ProcessEnv;
  /** The message: a file handed as stdin (as qmail does), or bytes written to a pipe (as Postfix does). */
  readonly input?: { readonly file: string } | Buffer | string;
  readonly killAfterMs?: number;
  readonly timeoutMs?: number;
  /** Run under /usr/bin/time to learn the peak RSS (not together with killAfterMs). */
  readonly measure?: boolean;
}

const TIME = '/usr/bin/time';
let scratch: string | undefined;

export function canMeasure(): boolean {
  return existsSync(TIME);
}

export function runCli(args: readonly string[], opts: RunOptions): Promise<Run> {
  scratch ??= mkdtempSync(join(tmpdir(), 'vouch-run-'));
  const started = Date.now();
  const measure = opts.measure === true && canMeasure();
  const timeFile = measure ? join(scratch, `time-${process.pid}-${Math.random().toString(36).slice(2)}`) : undefined;
  const cmd = timeFile ? TIME : process.execPath;
  const argv = timeFile ? ['-f', '%M', '-o', timeFile, process.execPath, CLI, ...args] : [CLI, ...args];
  const input = opts.input;
  const fd = input !== undefined && typeof input === 'object' && 'file' in input ? openSync(input.file, 'r') : undefined;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, {
      // VOUCH_DEBUG passes through so that a failing harness can be rerun with stack traces.
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...(process.env['VOUCH_DEBUG'] ? { VOUCH_DEBUG: '1' } : {}), ...opts.env },
      stdio: [fd ?? 'pipe', 'pipe', 'pipe'],
    });
    if (fd !== undefined) closeSync(fd);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    let killedByUs = false;
    let timedOut = false;
    const killer = opts.killAfterMs === undefined ? undefined : setTimeout(() => {
      killedByUs = child.kill('SIGKILL');
    }, opts.killAfterMs);
    const limit = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      clearTimeout(limit);
      let maxRssKb: number | undefined;
      if (timeFile) {
        const lines = readFileSync(timeFile, 'utf8').trim().split('\n');
        maxRssKb = Number(lines[lines.length - 1]);
        rmSync(timeFile, { force: true });
      }
      // Under /usr/bin/time a killed child shows as "Command terminated by signal 9" and exit 137.
      resolve({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString(), killedByUs: killedByUs && signal === 'SIGKILL', timedOut, ms: Date.now() - started, maxRssKb });
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined);
      child.stdin.end(fd === undefined ? (input as Buffer | string | undefined) ?? '' : undefined);
    }
  });
}

/** Writes a message once to a temp file, to be handed as stdin to every attempt. */
export function messageFile(dir: string, name: string, bytes: Buffer | string): { file: string } {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return { file };
}
