// MIME parsing of held mail for display, with limits: mailparser runs in a pooled worker thread
// with a capped heap, on at most maxBytes, and the worker is ended after a time limit, so one
// hostile message can neither hang nor exhaust the CLI or the web page. This file is also the
// workers' entry. The time limit counts from the moment the worker has loaded mailparser (and the
// HTML filter) and starts on the message: it bounds the work a message can cause, not how long a
// busy machine takes to start a thread (that has its own, generous, bound).

import { isUtf8 } from 'node:buffer';
import { Readable, Transform, Writable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

export interface AttachmentInfo {
  readonly filename: string;
  readonly contentType: string;
  readonly size: number;
}

export interface ParsedView {
  readonly text: string | undefined;
  readonly html: string | undefined;
  readonly attachments: readonly AttachmentInfo[];
  readonly truncated: boolean;
}

export interface ParseLimits {
  readonly maxBytes: number;
  /** How long the parse of this message may take (default 5 s), once the parser is loaded. */
  readonly timeoutMs?: number;
  /** Heap for the worker, in MB (default: 256, more for a big message, at most 1024). */
  readonly heapMb?: number;
  /** A module (file URL) whose `filterHtml(html)` rewrites the HTML inside the worker, so the
   * work on a hostile body is bounded by the same limits as the parse. */
  readonly htmlFilter?: string;
}

export interface AttachmentContent extends AttachmentInfo {
  readonly content: Buffer;
}

export class ParseError extends Error {
  readonly code: 'ETIMEOUT' | 'ELIMIT' | 'EPARSE';
  constructor(code: 'ETIMEOUT' | 'ELIMIT' | 'EPARSE', message: string) {
    super(message);
    this.code = code;
  }
}

interface Job {
  readonly marker: 'vouch-parse';
  readonly raw: Uint8Array;
  /** -1: the view; n ≥ 0: the bytes of attachment n. */
  readonly attachment: number;
  readonly htmlFilter: string | undefined;
}

type Answer = { ok: true; view: ParsedView } | { ok: true; attachment: AttachmentContent | null } | { ok: false; message: string };

/** The worker's word that mailparser is loaded and the message is next: the parse's clock starts. */
interface Ready {
  readonly ready: true;
}

/** Parses a message for display: text, HTML and the list of attachments. */
export async function parseMessage(raw: Buffer, opts: ParseLimits): Promise<ParsedView> {
  const truncated = raw.length > opts.maxBytes;
  const answer = await runJob(truncated ? raw.subarray(0, opts.maxBytes) : raw, -1, opts);
  if (!answer.ok) throw new ParseError('EPARSE', answer.message);
  if (!('view' in answer)) throw new ParseError('EPARSE', 'unexpected answer from the parser');
  return { ...answer.view, truncated };
}

/** The decoded bytes of attachment `index` (as listed by parseMessage), or undefined. */
export async function parseAttachment(raw: Buffer, index: number, opts: ParseLimits): Promise<AttachmentContent | undefined> {
  const input = raw.length > opts.maxBytes ? raw.subarray(0, opts.maxBytes) : raw;
  const answer = await runJob(input, index, opts);
  if (!answer.ok) throw new ParseError('EPARSE', answer.message);
  if (!('attachment' in answer)) throw new ParseError('EPARSE', 'unexpected answer from the parser');
  return answer.attachment ?? undefined;
}

// The pool: at most POOL_SIZE long-lived parser workers, each with a fixed heap, so opening a
// message costs a message round trip instead of a worker start (250-1,000 ms on a busy machine).
// A worker is recycled after RECYCLE_AFTER jobs (whatever a parse left behind goes with it) and
// replaced at once after a timeout, a crash or running out of memory. A message too big for the
// pool's heap gets a worker of its own, sized to it, as before the pool.
const POOL_SIZE = 2;
const RECYCLE_AFTER = 200;
const POOL_HEAP_MB = 256;

interface Pooled {
  readonly worker: Worker;
  jobs: number;
  /** Settles when the worker has loaded the parser: a job's time limit runs from then on, so a
   * slow start on a busy machine is not taken for a hostile message. */
  readonly ready: Promise<void>;
}

/** How long a worker may take to start and load the parser, whatever the message: only a machine
 * that is stuck gets near it. */
const START_LIMIT_MS = 60_000;

/** A pool worker; with `preload`, it loads the parser before it says it is ready, otherwise the
 * first message it gets loads it. */
function pooled(preload = true): Pooled {
  const worker = spawn({ marker: 'vouch-parse-pool', preload }, POOL_HEAP_MB);
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(() => reject(new ParseError('ETIMEOUT', 'the parser did not start'))), START_LIMIT_MS);
    const done = (fn: () => void) => {
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onFail);
      worker.off('exit', onFail);
      fn();
    };
    const onMessage = () => done(resolve);
    const onFail = () => done(() => reject(new ParseError('EPARSE', 'the parser did not start')));
    worker.once('message', onMessage);
    worker.once('error', onFail);
    worker.once('exit', onFail);
  });
  ready.catch(() => void worker.terminate());
  return { worker, jobs: 0, ready };
}

/** Starts one parser worker ahead of the first message (the review page calls it at start). The
 * thread is started, not the parser loaded: mailparser and what it pulls in take about 30 MB,
 * which a review page that only lists mail never needs; the first message opened loads it (a tenth
 * of a second here, against up to a second for starting a thread on a busy machine). */
export function warmParser(): void {
  if (idle.length === 0 && running === 0) {
    const p = pooled(false);
    p.worker.unref();
    p.ready.then(() => idle.push(p), () => undefined);
  }
}

const idle: Pooled[] = [];
let running = 0;
const waiting: (() => void)[] = [];
let spawned = 0;

/** How many parser workers this process has started (tests check the pool reuses them). */
export function parserStats(): { readonly spawned: number; readonly idle: number } {
  return { spawned, idle: idle.length };
}

async function slot(): Promise<() => void> {
  if (running >= POOL_SIZE) await new Promise<void>((resolve) => waiting.push(resolve));
  running += 1;
  return () => {
    running -= 1;
    waiting.shift()?.();
  };
}

function spawn(data: unknown, heap: number, transfer: ArrayBuffer[] = []): Worker {
  spawned += 1;
  return new Worker(new URL(import.meta.url), {
    workerData: data,
    transferList: transfer,
    resourceLimits: { maxOldGenerationSizeMb: heap, maxYoungGenerationSizeMb: Math.min(32, heap), stackSizeMb: 4 },
    stdout: true,
    stderr: true,
  });
}

async function runJob(raw: Buffer, attachment: number, opts: ParseLimits): Promise<Answer> {
  // Room for mailparser's copies of a big message (about eight times its size), within bounds.
  const heap = opts.heapMb ?? Math.min(1024, Math.max(POOL_HEAP_MB, Math.ceil(raw.length / 1_048_576) * 8));
  const free = await slot();
  try {
    // A copy the worker owns; the caller's buffer may be a view into a larger one.
    const copy = new Uint8Array(raw);
    const job: Job = { marker: 'vouch-parse', raw: copy, attachment, htmlFilter: opts.htmlFilter };
    if (heap !== POOL_HEAP_MB) {
      const worker = spawn(job, heap, [copy.buffer]);
      return await answerOf(worker, opts.timeoutMs ?? 5_000, true);
    }
    const w = idle.pop() ?? pooled();
    w.worker.ref();
    let healthy = false;
    try {
      await w.ready;
      w.worker.postMessage(job, [copy.buffer]);
      w.jobs += 1;
      const answer = await answerOf(w.worker, opts.timeoutMs ?? 5_000, false);
      healthy = true;
      return answer;
    } finally {
      if (healthy && w.jobs < RECYCLE_AFTER) {
        w.worker.unref();
        idle.push(w);
      } else {
        void w.worker.terminate();
      }
    }
  } finally {
    free();
  }
}

/** The worker's one answer, or a ParseError on a timeout, a crash or an exit; a one-shot worker
 * is ended after it, a pooled one only when it failed (the caller then drops it). The clock is the
 * start limit until the worker says it is ready for this message, then the parse's own limit. */
function answerOf(worker: Worker, timeoutMs: number, oneShot: boolean): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void, failed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
      if (oneShot || failed) void worker.terminate();
      fn();
    };
    const late = (what: string) => () => finish(() => reject(new ParseError('ETIMEOUT', what)), true);
    const onMessage = (m: Answer | Ready) => {
      if ('ready' in m) {
        clearTimeout(timer);
        timer = setTimeout(late('parsing took too long'), timeoutMs);
        return;
      }
      finish(() => resolve(m), false);
    };
    const onError = (err: Error & { code?: string }) =>
      finish(() => reject(new ParseError(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'ELIMIT' : 'EPARSE', err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'the message needs too much memory to parse' : err.message)), true);
    const onExit = () => finish(() => reject(new ParseError('EPARSE', 'the parser stopped without an answer')), true);
    let timer = setTimeout(late('the parser did not start in time'), START_LIMIT_MS);
    worker.on('message', onMessage);
    worker.once('error', onError);
    worker.once('exit', onExit);
  });
}

/** 8-bit text that names no charset is shown as Latin-1 (every byte a character) rather than as
 * replacement characters, unless it is valid UTF-8: in every text part (the message itself, and
 * each text/plain or text/html part of a multipart one) whose bytes, once their transfer encoding
 * (base64, quoted-printable) is undone, are not UTF-8, the part gets the charset parameter
 * mailparser would otherwise take to be UTF-8. mailparser's own splitter (mailsplit) reads the
 * parts, so both see the same structure; a message where no part needs it is passed on as it
 * came, byte for byte. Linear: one pass over the message, each part's body decoded once. */
export async function defaultLatin1(raw: Buffer): Promise<Buffer> {
  const { Splitter, Joiner } = await mailsplit();
  // A first pass only looks (nothing is kept but the body of the text part at hand), so a big
  // message that needs nothing costs no copy; the rare one that does is split again and joined.
  const look = new Latin1Parts();
  await pipeline(Readable.from([raw]), new Splitter(), look, new Writable({ objectMode: true, write: (_piece, _enc, done) => done() }));
  if (!look.changed) return raw;
  const joined: Buffer[] = [];
  await pipeline(Readable.from([raw]), new Splitter(), new Latin1Parts(), new Joiner(), new Writable({
    write(chunk: Buffer, _enc, done) {
      joined.push(chunk);
      done();
    },
  }));
  return Buffer.concat(joined);
}

type MailSplit = typeof import('@zone-eu/mailsplit');
type MimeNode = InstanceType<MailSplit['MimeNode']>;
type Body = { readonly type: 'body' | 'data'; readonly value: Buffer; readonly node?: MimeNode };
type Piece = MimeNode | Body;

async function mailsplit(): Promise<MailSplit> {
  const m = (await import('@zone-eu/mailsplit')) as MailSplit & { default?: MailSplit };
  return m.default ?? m;
}

/** Between mailsplit's Splitter and Joiner: holds each charset-less text part until its body is
 * complete, then marks it Latin-1 when its decoded bytes are not UTF-8. */
class Latin1Parts extends Transform {
  changed = false;
  #held: { node: MimeNode; body: Body[] } | undefined;

  constructor() {
    super({ objectMode: true });
  }

  override _transform(piece: Piece, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.#held && piece.type === 'body') {
      this.#held.body.push(piece as Body);
      done();
      return;
    }
    const go = () => {
      if (piece.type === 'node' && needsCharset(piece as MimeNode)) this.#held = { node: piece as MimeNode, body: [] };
      else this.push(piece);
      done();
    };
    if (this.#held) this.#settle().then(go, done);
    else go();
  }

  override _flush(done: TransformCallback): void {
    if (this.#held) this.#settle().then(() => done(), done);
    else done();
  }

  async #settle(): Promise<void> {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    const decoder = held.node.getDecoder();
    const parts: Buffer[] = [];
    decoder.on('data', (c: Buffer) => parts.push(c));
    const ended = new Promise<void>((resolve, reject) => {
      decoder.once('end', resolve);
      decoder.once('error', reject);
    });
    for (const p of held.body) decoder.write(p.value);
    decoder.end();
    await ended;
    if (!isUtf8(Buffer.concat(parts))) {
      held.node.setCharset('iso-8859-1');
      this.changed = true;
    }
    this.push(held.node);
    for (const p of held.body) this.push(p);
  }
}

/** A text part that is shown (not an attachment) and names no charset. */
function needsCharset(node: MimeNode): boolean {
  node.parseHeaders();
  return typeof node.contentType === 'string' && node.contentType.startsWith('text/') && !node.charset && node.disposition !== 'attachment';
}

async function work(job: Job, ready: () => void): Promise<Answer> {
  const { simpleParser } = await import('mailparser');
  await mailsplit();
  if (job.htmlFilter !== undefined) await import(job.htmlFilter);
  ready();
  const mail = await simpleParser(await defaultLatin1(Buffer.from(job.raw.buffer, job.raw.byteOffset, job.raw.byteLength)), {
    skipImageLinks: true,
    maxHtmlLengthToParse: 2_000_000,
  });
  const info = (a: (typeof mail.attachments)[number]): AttachmentInfo => ({
    filename: a.filename ?? '(unnamed)',
    contentType: a.contentType,
    size: a.size,
  });
  if (job.attachment >= 0) {
    const a = mail.attachments[job.attachment];
    return { ok: true, attachment: a ? { ...info(a), content: a.content } : null };
  }
  let html = typeof mail.html === 'string' ? mail.html : undefined;
  if (html !== undefined && job.htmlFilter !== undefined) {
    const filter = (await import(job.htmlFilter)) as { filterHtml: (html: string) => string };
    html = filter.filterHtml(html);
  }
  return {
    ok: true,
    view: {
      text: mail.text,
      html,
      attachments: mail.attachments.map(info),
      truncated: false,
    },
  };
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  const answer = (job: Job) =>
    work(job, () => port.postMessage({ ready: true } satisfies Ready)).then(
      (a) => port.postMessage(a),
      (err: unknown) => port.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) } satisfies Answer),
    );
  const data = workerData as { marker?: string; preload?: boolean } | null;
  if (data?.marker === 'vouch-parse') void answer(workerData as Job);
  else if (data?.marker === 'vouch-parse-pool') {
    port.on('message', (job: Job) => void answer(job));
    // Ready once the parser is loaded (the first job's start does not pay for it), or at once when
    // the first job is to load it.
    const ready = () => port.postMessage({ ready: true } satisfies Ready);
    if (data.preload === false) ready();
    else void import('mailparser').then(ready, ready);
  }
}
