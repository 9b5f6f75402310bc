// What the benchmark measures with: timed runs of the built CLI with a message file on stdin (as
// qmail-local hands it), generated messages, medians and percentiles, peak RSS and CPU from /proc.

import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { CLI } from '../test/helpers.js';

export { CLI };

/** One timed run: wall time from spawn to exit, as the MTA sees it. */
export interface Timed {
  readonly ms: number;
  readonly code: number | null;
  readonly stdout: string;
}

/** Runs a command to its end with `stdinFile` as fd 0 and stdout/stderr on pipes; times it. */
export function timedRun(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, stdinFile: string): Timed {
  const fd = openSync(stdinFile, 'r');
  try {
    const start = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { env, stdio: [fd, 'pipe', 'pipe'], maxBuffer: 1 << 20 });
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    return { ms, code: r.status, stdout: `${r.stdout?.toString() ?? ''}${r.stderr?.toString() ?? ''}` };
  } finally {
    closeSync(fd);
  }
}

/** The same, without blocking the event loop (for concurrent runs and RSS polling). `onSpawn` gets
 * the pid as soon as the child exists. */
export function runAsync(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  stdinFile: string,
  onSpawn?: (pid: number) => void,
): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const fd = openSync(stdinFile, 'r');
    const start = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: [fd, 'pipe', 'pipe'] });
    closeSync(fd);
    if (child.pid !== undefined) onSpawn?.(child.pid);
    const out: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - start) / 1e6, code, stdout: Buffer.concat(out).toString() }));
  });
}

export function median(xs: readonly number[]): number {
  return quantile(xs, 0.5);
}

/** The q-quantile by linear interpolation between order statistics. */
export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (s[lo] ?? NaN) + ((s[hi] ?? NaN) - (s[lo] ?? NaN)) * (pos - lo);
}

const WORDS = 'the of and to in is was that for it with as his on be at by had are but from or have an they which one you were all her she there would their we him been has when who will no more if out so up said what its about than into them can only other time new some could these two may first then do any like my now over such our man me even most made after also did many before must through back years where much your way well down should because each just those people how too little state good very make world still see own men work long here get both between life being under never day same another know while last might us great old year off come since against go came right used take three'.split(' ');

/** The header lines every bench message starts with; `id` makes it unique (and is in the Subject). */
function headerLines(opts: { readonly from: string; readonly id: string }, contentType: string): string[] {
  return [
    `From: Sender <${opts.from}>`,
    'To: Alice <alice@example.org>',
    `Subject: bench ${opts.id}`,
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    `Message-ID: <${opts.id}.${process.pid}@bench.example>`,
    'MIME-Version: 1.0',
    `Content-Type: ${contentType}`,
  ];
}

/** A plain text message of about `size` bytes. */
export function makeMessage(opts: { readonly from: string; readonly id: string; readonly size: number }): Buffer {
  const head = [...headerLines(opts, 'text/plain; charset=utf-8'), '', ''].join('\n');
  const lines: string[] = [];
  let n = head.length;
  let w = 0;
  while (n < opts.size) {
    let line = '';
    while (line.length < 66) line += `${WORDS[w++ % WORDS.length] ?? 'x'} `;
    lines.push(line.trimEnd());
    n += line.length;
  }
  return Buffer.from(head + lines.join('\n') + '\n');
}

/** A large message of `size` bytes: a short text part and a base64 attachment, 76-column lines. */
export function makeBigMessage(opts: { readonly from: string; readonly id: string; readonly size: number }): Buffer {
  const head = Buffer.from(
    [
      ...headerLines(opts, 'multipart/mixed; boundary="b1"'),
      '',
      '--b1',
      'Content-Type: text/plain',
      '',
      'The attachment.',
      '--b1',
      'Content-Type: application/octet-stream',
      'Content-Transfer-Encoding: base64',
      'Content-Disposition: attachment; filename="data.bin"',
      '',
      '',
    ].join('\n'),
  );
  const tail = Buffer.from('--b1--\n');
  const lineLen = 77;
  const nLines = Math.max(0, Math.floor((opts.size - head.length - tail.length) / lineLen));
  const body = Buffer.allocUnsafe(nLines * lineLen);
  const line = Buffer.from(`${Buffer.alloc(57, 0x5a).toString('base64')}\n`);
  for (let i = 0; i < nLines; i++) line.copy(body, i * lineLen);
  return Buffer.concat([head, body, tail]);
}

export function writeMessage(path: string, bytes: Buffer): string {
  writeFileSync(path, bytes);
  return path;
}

/** Peak resident set (VmHWM) of a running process in bytes, or undefined once it is gone. */
export function peakRss(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Runs a command and polls its VmHWM every millisecond or so until it exits: the last figure
 * read is its peak (VmHWM only grows), up to the final moments before exit. */
export async function runWithPeakRss(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, stdinFile: string): Promise<Timed & { peak: number }> {
  let peak = 0;
  let timer: NodeJS.Timeout | undefined;
  const r = await runAsync(cmd, args, env, stdinFile, (pid) => {
    timer = setInterval(() => {
      const p = peakRss(pid);
      if (p !== undefined && p > peak) peak = p;
    }, 1);
  });
  if (timer) clearInterval(timer);
  return { ...r, peak };
}

/** CPU time (ms) of this process's waited-for children, from /proc/self/stat (cutime + cstime). */
export function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // After the command name: state is field 3, so cutime (16) and cstime (17) are at 13 and 14 here.
  const ticks = Number(fields[13]) + Number(fields[14]);
  return (ticks * 1000) / clockTicks();
}

/** CPU time (user + system, all threads) a running process has used so far, in ms. */
export function processCpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime (14) and stime (15), at 11 and 12 after the command name.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const n = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim());
    ticksPerSecond = Number.isFinite(n) && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  // user nice system idle iowait irq softirq steal (guest time is already inside user)
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + (Number.isFinite(b) ? b : 0), 0);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  return { busy: total - idle, total };
}

export const CORES = cpus().length;
