// MIME parsing of held mail for display, with limits: mailparser runs in a worker thread with a
// capped heap, on at most maxBytes, and is terminated after a time limit, so one hostile message
// can neither hang nor exhaust the CLI or the web page. This file is also the worker's entry.
// The time limit counts from the moment the worker has loaded mailparser and starts on the message:
// it bounds the work a message can cause, not how long a busy machine takes to start a thread
// (that has its own, generous, bound).

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

/** How long a worker may take to start and load the parser, whatever the message: only a machine
 * that is stuck gets near it. */
const START_LIMIT_MS = 60_000;

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

// At most this many parser workers at once: a burst of requests queues instead of spawning a
// worker (and its heap) per request.
const MAX_WORKERS = 2;
let running = 0;
const waiting: (() => void)[] = [];

async function slot(): Promise<() => void> {
  if (running >= MAX_WORKERS) await new Promise<void>((resolve) => waiting.push(resolve));
  running += 1;
  return () => {
    running -= 1;
    waiting.shift()?.();
  };
}

async function runJob(raw: Buffer, attachment: number, opts: ParseLimits): Promise<Answer> {
  const free = await slot();
  try {
    return await new Promise<Answer>((resolve, reject) => {
      // A copy the worker owns; the caller's buffer may be a view into a larger one.
      const copy = new Uint8Array(raw);
      const job: Job = { marker: 'vouch-parse', raw: copy, attachment, htmlFilter: opts.htmlFilter };
      // Room for mailparser's copies of a big message (about eight times its size), within bounds.
      const heap = opts.heapMb ?? Math.min(1024, Math.max(256, Math.ceil(raw.length / 1_048_576) * 8));
      const worker = new Worker(new URL(import.meta.url), {
        workerData: job,
        transferList: [copy.buffer],
        resourceLimits: { maxOldGenerationSizeMb: heap, maxYoungGenerationSizeMb: Math.min(32, heap), stackSizeMb: 4 },
        stdout: true,
        stderr: true,
      });
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        fn();
        void worker.terminate();
      };
      const late = (what: string) => () => finish(() => reject(new ParseError('ETIMEOUT', what)));
      let timer = setTimeout(late('the parser did not start in time'), START_LIMIT_MS);
      worker.on('message', (m: Answer | Ready) => {
        if ('ready' in m) {
          clearTimeout(timer);
          timer = setTimeout(late('parsing took too long'), opts.timeoutMs ?? 5_000);
          return;
        }
        finish(() => resolve(m));
      });
      worker.once('error', (err: Error & { code?: string }) =>
        finish(() => reject(new ParseError(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'ELIMIT' : 'EPARSE', err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'the message needs too much memory to parse' : err.message))),
      );
      worker.once('exit', () => finish(() => reject(new ParseError('EPARSE', 'the parser stopped without an answer'))));
    });
  } finally {
    free();
  }
}

async function work(job: Job, ready: () => void): Promise<Answer> {
  const { simpleParser } = await import('mailparser');
  if (job.htmlFilter !== undefined) await import(job.htmlFilter);
  ready();
  const mail = await simpleParser(Buffer.from(job.raw.buffer, job.raw.byteOffset, job.raw.byteLength), {
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

if (!isMainThread && parentPort && (workerData as Partial<Job> | null)?.marker === 'vouch-parse') {
  const port = parentPort;
  work(workerData as Job, () => port.postMessage({ ready: true } satisfies Ready)).then(
    (answer) => port.postMessage(answer),
    (err: unknown) => port.postMessage({ ok: false, message: err instanceof Error ? err.message : String(err) } satisfies Answer),
  );
}
