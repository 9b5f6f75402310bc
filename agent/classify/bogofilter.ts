// bogofilter as a small program, qmail-style: an argv array, the message on stdin, the answer on
// stdout and in the exit status, and a timeout that kills it (and anything it started). A program
// that is missing, slow, crashing or printing garbage costs at most the timeout and is reported
// as a failure; it never throws.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../home/config.js';
import { classifierOutcome, readTerse, type ClassifierAnswer, type ClassifierOutcome, type LearnFlag, type ProgramEnd } from '../policy/classify.js';

export type ClassifierConfig = Config['classifier'];

/** Output past this is not bogofilter's terse answer: the rest is dropped unread. */
const MAX_OUTPUT = 4096;

/** Runs `cmd args` with `input` on stdin; after `timeoutMs` its process group is killed and the
 * run ends as timed out, whether or not the pipes ever close. */
export function runProgram(cmd: string, args: readonly string[], input: Buffer | readonly Buffer[], timeoutMs: number): Promise<ProgramEnd & { stderr: string }> {
  return new Promise((resolve) => {
    let settled = false;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    const finish = (end: Omit<ProgramEnd, 'stdout'>) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...end, stdout: Buffer.concat(out).toString('latin1'), stderr: Buffer.concat(err).toString('utf8').trim().slice(0, 300) });
    };
    let child: ReturnType<typeof spawn>;
    try {
      // Its own process group, so a timeout kills a shell wrapper's children too.
      child = spawn(cmd, [...args], { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    } catch (e) {
      resolve({ code: null, signal: null, stdout: '', stderr: '', timedOut: false, error: (e as NodeJS.ErrnoException).code ?? 'spawn failed' });
      return;
    }
    const timer = setTimeout(() => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      child.stdout?.destroy();
      child.stderr?.destroy();
      child.stdin?.destroy();
      finish({ code: null, signal: null, timedOut: true });
    }, timeoutMs);
    child.on('error', (e: NodeJS.ErrnoException) => finish({ code: null, signal: null, timedOut: false, error: e.code ?? 'spawn failed' }));
    child.stdout?.on('data', (c: Buffer) => {
      if (outLen < MAX_OUTPUT) out.push(c);
      outLen += c.length;
    });
    child.stderr?.on('data', (c: Buffer) => {
      if (errLen < MAX_OUTPUT) err.push(c);
      errLen += c.length;
    });
    child.on('close', (code, signal) => finish({ code, signal, timedOut: false }));
    // A program that exits without reading all of stdin closes the pipe: not our failure.
    child.stdin?.on('error', () => undefined);
    const parts = Buffer.isBuffer(input) ? [input] : input;
    for (const p of parts) child.stdin?.write(p);
    child.stdin?.end();
  });
}

/** Whether the word list exists: without one bogofilter can only say "unsure". */
export function trained(cfg: ClassifierConfig): boolean {
  return existsSync(join(cfg.wordlists, 'wordlist.db'));
}

/** Classifies one message (its first classifier.max_size bytes). */
export async function classify(cfg: ClassifierConfig, message: Buffer): Promise<ClassifierAnswer> {
  if (!trained(cfg)) return { kind: 'untrained' };
  const end = await runProgram(cfg.command, ['-d', cfg.wordlists, '-T'], message.subarray(0, cfg.max_size), cfg.timeout);
  return readTerse(end);
}

/** What the classifier says about a message that would otherwise be challenged (the held path's
 * one call): never throws, and a failure leaves the normal rules in charge. */
export async function judge(cfg: ClassifierConfig, message: Buffer): Promise<ClassifierOutcome> {
  let answer: ClassifierAnswer;
  try {
    answer = await classify(cfg, message);
  } catch (err) {
    answer = { kind: 'failed', why: `error (${(err as NodeJS.ErrnoException).code ?? 'unexpected'})` };
  }
  return classifierOutcome(answer, cfg.suppress);
}

/** The first line of a message in an mbox stream: bogofilter registers each message of an mbox
 * on its stdin separately. */
const FROM_LINE = Buffer.from('From vouch Thu Jan  1 00:00:00 1970\n');

/** Messages as one mbox (mboxrd: a `From ` line in a body gets one more `>`). */
export function mboxOf(messages: readonly Buffer[], maxSize: number): Buffer[] {
  const parts: Buffer[] = [];
  for (const m of messages) {
    const text = m.subarray(0, maxSize).toString('latin1').replace(/^(>*From )/gm, '>$1');
    parts.push(FROM_LINE, Buffer.from(text, 'latin1'), Buffer.from(text.endsWith('\n') ? '\n' : '\n\n'));
  }
  return parts;
}

/** How long one registration run may take: bogofilter learns hundreds of messages a second. */
function learnTimeout(cfg: ClassifierConfig, n: number): number {
  return Math.max(cfg.timeout, 60_000 + n * 100);
}

/** Learns (or unlearns) messages in one bogofilter run. Throws when bogofilter fails. */
export async function register(cfg: ClassifierConfig, flag: LearnFlag, messages: readonly Buffer[]): Promise<void> {
  if (messages.length === 0) return;
  const end = await runProgram(cfg.command, ['-d', cfg.wordlists, flag], mboxOf(messages, cfg.max_size), learnTimeout(cfg, messages.length));
  if (end.error !== undefined) throw new Error(`cannot run ${cfg.command} (${end.error})`);
  if (end.timedOut) throw new Error(`${cfg.command} ${flag} timed out`);
  if (end.code !== 0) throw new Error(`${cfg.command} ${flag} failed (${end.signal ?? `exit ${String(end.code)}`})${end.stderr ? `: ${end.stderr.split('\n')[0]}` : ''}`);
}
