// Shared test helpers: temp homes made with the real `vouch init`, and the built CLI spawned the
// way an MTA spawns it.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HoldInput } from '../agent/store/store.js';

/** The repository root (tests run from dist/test/). */
export const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
export const CLI = join(ROOT, 'dist', 'agent', 'cli.js');
export const FIXTURES = join(ROOT, 'test', 'fixtures');

export function fixture(name: string): Buffer {
  return readFileSync(join(FIXTURES, name));
}

export interface TestHome {
  /** The vouch home (VOUCH_HOME). */
  readonly dir: string;
  /** The fake user's home (HOME); the Maildir is `${user}/Maildir`. */
  readonly user: string;
  readonly maildir: string;
  /** Environment for spawning vouch with this home. */
  readonly env: NodeJS.ProcessEnv;
}

export interface RunResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the built `vouch` with args, input on stdin, and the given environment (nothing inherited
 * but PATH). */
export function vouch(args: readonly string[], opts: { env: NodeJS.ProcessEnv; input?: Buffer | string; timeoutMs?: number }): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.input ?? '');
  });
}

/** A fresh temp home made by `vouch init`, with extra config lines appended to config.toml
 * (e.g. `[send]\ntransport = "file"`) by rewriting whole sections. Unless `config` says otherwise,
 * challenge.require is "none": tests of other features make no DNS queries (there is no network
 * here); test/auth.test.ts runs the checks against a DNS server of its own. */
export async function makeHome(opts: { address?: string; config?: Record<string, Record<string, string | number | boolean | string[]>> } = {}): Promise<TestHome> {
  const base = mkdtempSync(join(tmpdir(), 'vouch-test-'));
  const dir = join(base, 'vouch');
  const user = join(base, 'user');
  const env: NodeJS.ProcessEnv = { VOUCH_HOME: dir, HOME: user, USER: 'alice' };
  const r = await vouch(['init', '--address', opts.address ?? 'alice@example.org'], { env });
  if (r.code !== 0) throw new Error(`vouch init failed: ${r.stderr}${r.stdout}`);
  setConfig(dir, { challenge: { require: 'none' } });
  if (opts.config) setConfig(dir, opts.config);
  return { dir, user, maildir: join(user, 'Maildir'), env };
}

/** Sets keys in a home's config.toml (replacing the line `key = …` inside its section). */
export function setConfig(dir: string, values: Record<string, Record<string, string | number | boolean | string[]>>): void {
  const path = join(dir, 'config.toml');
  let text = readFileSync(path, 'utf8');
  for (const [section, keys] of Object.entries(values)) {
    for (const [key, value] of Object.entries(keys)) {
      const toml = JSON.stringify(value);
      const re = new RegExp(`(\\[${section}\\][\\s\\S]*?^)${key} = .*$`, 'm');
      if (re.test(text)) text = text.replace(re, `$1${key} = ${toml.replace(/\$/g, '$$$$')}`);
      else text = text.replace(`[${section}]\n`, `[${section}]\n${key} = ${toml}\n`);
    }
  }
  writeFileSync(path, text);
}

/** The qmail-local environment for one delivery to alice (optionally to an extension). */
export function qmailEnv(home: TestHome, sender: string, ext = '', delimiter = '-'): NodeJS.ProcessEnv {
  const local = ext ? `alice${delimiter}${ext}` : 'alice';
  const recipient = `${local}@example.org`;
  return {
    ...home.env,
    SENDER: sender,
    RECIPIENT: recipient,
    LOCAL: local,
    HOST: 'example.org',
    EXT: ext,
    DTLINE: `Delivered-To: ${recipient}\n`,
    RPLINE: `Return-Path: <${sender}>\n`,
  };
}

/** The Postfix local(8) environment for one delivery to alice. */
export function postfixEnv(home: TestHome, sender: string, ext = ''): NodeJS.ProcessEnv {
  const local = ext ? `alice+${ext}` : 'alice';
  return {
    ...home.env,
    SENDER: sender,
    RECIPIENT: `${local}@example.org`,
    LOCAL: local,
    USER: 'alice',
    DOMAIN: 'example.org',
    EXTENSION: ext,
  };
}

/** Delivers one message through the built CLI with a qmail environment. */
export function deliverQmail(home: TestHome, sender: string, message: Buffer | string, ext = ''): Promise<RunResult> {
  return vouch(['deliver'], { env: qmailEnv(home, sender, ext), input: message });
}

/** The files in a Maildir subfolder (new/ by default), with their bytes. */
export function maildirFiles(maildir: string, sub: 'new' | 'cur' | 'tmp' = 'new'): { name: string; bytes: Buffer }[] {
  let names: string[];
  try {
    names = readdirSync(join(maildir, sub)).sort();
  } catch {
    return [];
  }
  return names.map((name) => ({ name, bytes: readFileSync(join(maildir, sub, name)) }));
}

/** A small RFC 5322 message. */
export function message(opts: { from?: string; subject?: string; body?: string; headers?: string[] } = {}): string {
  return [
    `From: ${opts.from ?? 'Bob <bob@example.com>'}`,
    'To: alice@example.org',
    `Subject: ${opts.subject ?? 'Hello'}`,
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    `Message-ID: <${Math.random().toString(36).slice(2)}@example.com>`,
    ...(opts.headers ?? []),
    '',
    opts.body ?? 'Hi Alice,\nhow are you?\n',
  ].join('\n');
}

/** `vouch pending list --json` for a home. */
export async function pendingList(home: TestHome): Promise<{ id: string; sender: string; subject: string; reason: string; challenge: string; challenge_note: string }[]> {
  const r = await vouch(['pending', 'list', '--json'], { env: home.env });
  if (r.code !== 0) throw new Error(`pending list failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { id: string; sender: string; subject: string; reason: string; challenge: string; challenge_note: string }[];
}

/** A held message for store tests: bob to alice, unknown sender, challenge suppressed. */
export function holdInput(over: Partial<HoldInput> = {}): HoldInput {
  return {
    digest: 'd1',
    received: Date.UTC(2026, 10, 23, 10),
    sender: 'bob@example.com',
    senderKey: 'bob@example.com',
    recipient: 'alice@example.org',
    fromHeader: 'Bob <bob@example.com>',
    subject: 'Hello',
    date: '',
    messageId: '<1@example.com>',
    reason: 'unknown sender',
    challenge: 'suppressed',
    challengeNote: 'test',
    rpline: 'Return-Path: <bob@example.com>\n',
    dtline: 'Delivered-To: alice@example.org\n',
    raw: Buffer.from('Subject: Hello\n\nbody\0\r'),
    ...over,
  };
}
