// bogofilter as a small program, qmail-style: an argv array, the message on stdin, the answer on
// stdout and in the exit status, and a timeout that kills it (and anything it started). A program
// that is missing, slow, crashing or printing garbage costs at most the timeout and is reported
// as a failure; classification never throws.

import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../home/config.js';
import { classifierOutcome, readTerse, type ClassifierAnswer, type ClassifierOutcome, type LearnFlag, type ProgramEnd } from '../policy/classify.js';

export type ClassifierConfig = Config['classifier'];

/** Output past this is not bogofilter's terse answer (the program is stopped there). */
const MAX_OUTPUT = 4096;

/** Runs `cmd args` with `input` on stdin, in a process group of its own. After `timeoutMs` it is
 * killed, and so is anything it started (a wrapper script's children), whether or not they
 * still hold its pipes. Blocking: a delivery has nothing else to do meanwhile, and a blocking
 * child costs a cold process less than one with streams (no sockets are made for its pipes). */
export function runProgram(cmd: string, args: readonly string[], input: Buffer | readonly Buffer[], timeoutMs: number): ProgramEnd & { stderr: string } {
  const r = spawnSync(cmd, [...args], {
    input: Buffer.isBuffer(input) ? input : Buffer.concat(input),
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
    maxBuffer: MAX_OUTPUT,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  } as SpawnSyncOptions & { detached: boolean });
  const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
  if (r.pid !== undefined && r.pid > 0 && (code === 'ETIMEDOUT' || code === 'ENOBUFS')) {
    try {
      process.kill(-r.pid, 'SIGKILL');
    } catch {
      /* the group is gone already */
    }
  }
  const stdout = r.stdout?.toString('latin1') ?? '';
  const stderr = r.stderr?.toString('utf8').trim().slice(0, 300) ?? '';
  if (code === 'ETIMEDOUT') return { code: null, signal: null, stdout, stderr, timedOut: true };
  if (code === 'ENOBUFS') return { code: null, signal: null, stdout: '', stderr, timedOut: false, error: 'too much output' };
  // EPIPE: the program ended without reading all of its stdin. Its exit says what happened.
  if (code !== undefined && code !== 'EPIPE') return { code: null, signal: null, stdout: '', stderr, timedOut: false, error: code };
  return { code: r.status, signal: r.signal, stdout, stderr, timedOut: false };
}

/** Whether the word list exists: without one bogofilter can only say "unsure". */
export function trained(cfg: ClassifierConfig): boolean {
  return existsSync(join(cfg.wordlists, 'wordlist.db'));
}

/** Classifies one message (its first classifier.max_size bytes). */
export async function classify(cfg: ClassifierConfig, message: Buffer): Promise<ClassifierAnswer> {
  if (!trained(cfg)) return { kind: 'untrained' };
  return readTerse(runProgram(cfg.command, ['-d', cfg.wordlists, '-T'], message.subarray(0, cfg.max_size), cfg.timeout));
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
  const end = runProgram(cfg.command, ['-d', cfg.wordlists, flag], mboxOf(messages, cfg.max_size), learnTimeout(cfg, messages.length));
  if (end.error !== undefined) throw new Error(`cannot run ${cfg.command} (${end.error})`);
  if (end.timedOut) throw new Error(`${cfg.command} ${flag} timed out`);
  if (end.code !== 0) throw new Error(`${cfg.command} ${flag} failed (${end.signal ?? `exit ${String(end.code)}`})${end.stderr ? `: ${end.stderr.split('\n')[0]}` : ''}`);
}
