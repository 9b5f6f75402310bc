// How a confirmation request leaves: one small interface, three implementations chosen by
// config.send.transport. Every one sends with the null envelope sender; failures carry a code.

import { spawn, spawnSync as nodeSpawnSync, type SpawnSyncOptionsWithBufferEncoding, type SpawnSyncReturns } from 'node:child_process';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isPlainAddress } from '../mail/address.js';
import type { Config } from '../home/config.js';

/** The SMTP envelope of a challenge: always the null sender, one recipient. */
export interface MailEnvelope {
  readonly from: '';
  readonly to: string;
}

export interface Transport {
  send(envelope: MailEnvelope, raw: Buffer): Promise<void>;
}

/** A send that did not happen. `code` goes into the held message's challenge note and the log line. */
export class TransportError extends Error {
  readonly code: string;
  constructor(code: string, text: string, options?: { cause?: unknown }) {
    super(text, options);
    this.name = 'TransportError';
    this.code = code;
  }
}

/** Side effects the tests replace. */
export interface TransportSeams {
  /** Runs the sendmail program to its end (child_process.spawnSync; spawnAwaited where other
   * deliveries must go on meanwhile, as in `vouch serve`). */
  readonly spawnSync?: (command: string, args: readonly string[], options: SpawnSyncOptionsWithBufferEncoding) => SpawnSyncReturns<Buffer> | Promise<SpawnSyncReturns<Buffer>>;
  /** Milliseconds before a sendmail child is killed (default 60 s) or an SMTP exchange is given up
   * (default 120 s): both well inside the delivery deadline. */
  readonly timeoutMs?: number;
  /** Extra TLS options for the smtp transport (a test CA). */
  readonly tls?: { readonly ca?: string | Buffer };
}

function checkRecipient(to: string): void {
  // The one place an address reaches argv, an SMTP command or a file name's neighbour: it must be plain.
  if (!isPlainAddress(to)) throw new TransportError('EADDRESS', 'the recipient is not a plain address');
}

/** The arguments for a sendmail-compatible program. qmail-inject knows only -nNaAhH and -f (anything
 * else is a permanent usage error) and never ends input at a "." line. Everything else (Postfix,
 * qmail's and exim's sendmail wrappers) gets -i so that a lone "." line cannot cut the message short.
 * Recipients on the command line are used instead of the header fields by both; `--` keeps a
 * recipient from ever being read as an option. */
export function sendmailArgs(program: string, to: string): string[] {
  const nullSender = ['-f', ''];
  return basename(program) === 'qmail-inject' ? [...nullSender, '--', to] : ['-i', ...nullSender, '--', to];
}

export class SendmailTransport implements Transport {
  readonly program: string;
  readonly #spawnSync: NonNullable<TransportSeams['spawnSync']>;
  readonly #timeoutMs: number;

  constructor(program: string, seams: TransportSeams = {}) {
    this.program = program;
    this.#spawnSync = seams.spawnSync ?? nodeSpawnSync;
    this.#timeoutMs = seams.timeoutMs ?? 60_000;
  }

  // spawnSync, not spawn: a delivery has nothing to do while sendmail runs, and the asynchronous
  // child's stdin stream (a net.Socket) costs a cold process about a millisecond to set up.
  async send(envelope: MailEnvelope, raw: Buffer): Promise<void> {
    checkRecipient(envelope.to);
    let r: SpawnSyncReturns<Buffer>;
    try {
      // No shell: the program and every argument are passed as they are.
      r = await this.#spawnSync(this.program, sendmailArgs(this.program, envelope.to), {
        input: raw,
        stdio: ['pipe', 'ignore', 'ignore'],
        shell: false,
        timeout: this.#timeoutMs,
        killSignal: 'SIGKILL',
      });
    } catch (err) {
      throw new TransportError('ESENDMAIL', 'cannot start the sendmail program', { cause: err });
    }
    const code = (r.error as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ETIMEDOUT') throw new TransportError('ETIMEDOUT', 'the sendmail program took too long', { cause: r.error });
    // A program that exits without reading its input fails the write (EPIPE): its exit status tells.
    if (r.status === 0) return;
    if (r.error !== undefined && r.status === null && r.signal === null) {
      throw new TransportError('ESENDMAIL', 'cannot run the sendmail program', { cause: r.error });
    }
    throw new TransportError('ESENDMAIL', `the sendmail program failed (${r.signal ?? `exit ${r.status}`})`);
  }
}

/** spawnSync's contract (input, timeout, kill signal; status, signal, error) without blocking the
 * event loop: for a process that serves other deliveries while sendmail runs. */
export function spawnAwaited(command: string, args: readonly string[], options: SpawnSyncOptionsWithBufferEncoding): Promise<SpawnSyncReturns<Buffer>> {
  return new Promise((resolve) => {
    const result = (status: number | null, signal: NodeJS.Signals | null, error?: Error): SpawnSyncReturns<Buffer> => ({
      pid: child.pid ?? 0,
      output: [],
      stdout: Buffer.alloc(0),
      stderr: Buffer.alloc(0),
      status,
      signal,
      ...(error ? { error } : {}),
    });
    let error: Error | undefined;
    const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'ignore'], shell: false });
    const timer =
      options.timeout !== undefined
        ? setTimeout(() => {
            error = Object.assign(new Error('spawnAwaited ETIMEDOUT'), { code: 'ETIMEDOUT' });
            child.kill(options.killSignal ?? 'SIGTERM');
          }, options.timeout)
        : undefined;
    child.on('error', (err) => {
      error ??= err;
    });
    // A program that exits without reading its input fails the write (EPIPE): its status tells.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? Buffer.alloc(0));
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve(result(status, signal, error));
    });
  });
}

export interface SmtpSettings {
  readonly host: string;
  readonly port: number;
  readonly security: 'starttls' | 'tls' | 'none';
  readonly user: string;
  readonly password: string;
}

export class SmtpTransport implements Transport {
  readonly settings: SmtpSettings;
  readonly #tls: TransportSeams['tls'];
  readonly #timeoutMs: number;

  constructor(settings: SmtpSettings, seams: TransportSeams = {}) {
    this.settings = settings;
    this.#tls = seams.tls;
    this.#timeoutMs = seams.timeoutMs ?? 120_000;
  }

  async send(envelope: MailEnvelope, raw: Buffer): Promise<void> {
    checkRecipient(envelope.to);
    const s = this.settings;
    // Loaded here: only the smtp path pays for nodemailer's SMTP client.
    const { createTransport } = await import('nodemailer');
    const transport = createTransport({
      host: s.host,
      port: s.port,
      secure: s.security === 'tls',
      requireTLS: s.security === 'starttls',
      ignoreTLS: s.security === 'none',
      ...(s.user !== '' ? { auth: { user: s.user, pass: s.password } } : {}),
      connectionTimeout: 30_000,
      greetingTimeout: 30_000,
      socketTimeout: 60_000,
      ...(this.#tls?.ca !== undefined ? { tls: { ca: this.#tls.ca } } : {}),
    });
    // One deadline for the whole exchange, well inside the delivery's own: a server that answers
    // slowly but never finishes must not make the MTA retry the delivery until it bounces.
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new TransportError('ETIMEDOUT', 'the SMTP server took too long')), this.#timeoutMs);
    });
    try {
      // envelope.from '' is sent as MAIL FROM:<>; the raw bytes go out unchanged.
      await Promise.race([transport.sendMail({ envelope: { from: '', to: [envelope.to] }, raw }), late]);
    } catch (err) {
      if (err instanceof TransportError) throw err;
      const code = (err as { code?: unknown })?.code;
      throw new TransportError(typeof code === 'string' ? code : 'ESMTP', 'the SMTP server did not take the message', { cause: err });
    } finally {
      clearTimeout(timer);
      transport.close();
    }
  }
}

/** Writes each message as NAME.eml with its envelope in NAME.envelope.json beside it (for tests and
 * the demo). The envelope is written first and each file appears by rename, so whoever sees a
 * .eml sees it whole. */
export class FileTransport implements Transport {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  async send(envelope: MailEnvelope, raw: Buffer): Promise<void> {
    checkRecipient(envelope.to);
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const { randomBytes } = await import('node:crypto');
      const name = `${Date.now()}.${process.pid}.${randomBytes(4).toString('hex')}`;
      const put = async (file: string, data: Buffer | string) => {
        const tmp = join(this.dir, `.${file}.tmp`);
        await writeFile(tmp, data, { mode: 0o600, flag: 'wx' });
        await rename(tmp, join(this.dir, file));
      };
      await put(`${name}.envelope.json`, `${JSON.stringify({ from: envelope.from, to: [envelope.to] })}\n`);
      await put(`${name}.eml`, raw);
    } catch (err) {
      throw new TransportError('EFILE', 'cannot write the message file', { cause: err });
    }
  }
}

/** The transport the config names. */
export function transportFor(send: Config['send'], seams: TransportSeams = {}): Transport {
  switch (send.transport) {
    case 'sendmail':
      return new SendmailTransport(send.sendmail, seams);
    case 'smtp':
      return new SmtpTransport(
        { host: send.smtp_host, port: send.smtp_port, security: send.smtp_security, user: send.smtp_user, password: send.smtp_password },
        seams,
      );
    case 'file':
      return new FileTransport(send.file_dir);
  }
}
