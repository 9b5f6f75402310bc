// `vouch serve`: an LMTP server (RFC 2033, smtp-server with `lmtp: true`) for every user of a mail
// host. Each recipient's message goes through deliverMessage, the same decision and storage path as
// `vouch deliver`, in the home the --homes template names; LMTP's reply per recipient after DATA
// takes the place of the exit code. 250 only once the message is durable (delivered, held or
// dropped); anything else is a 451 with the enhanced status vouch gives qmail, never a 5xx after
// DATA (the client would bounce to a sender who may be forged).

import { chmodSync, lstatSync, statSync, unlinkSync } from 'node:fs';
import { connect, type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { deliverMessage, type DeliverSeams } from '../deliver/deliver.js';
import { lmtpEnvelope } from '../deliver/envelope.js';
import { asTempFail, TempFail, UsageError } from '../failure/failure.js';
import { homeFor, splitRecipient } from './homes.js';
import { StorePool } from './stores.js';
import { Spawner } from './spawner.js';
import { ConfigCache } from './configs.js';
import { Writers } from './writers.js';

export type Listen = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

/** `unix:/run/vouch/lmtp.sock`, `127.0.0.1:24`, `[::1]:24`, or a bare port on the loopback. */
export function parseListen(text: string): Listen {
  if (text.startsWith('unix:')) {
    const path = text.slice(5);
    if (!path.startsWith('/')) throw new UsageError('--listen unix:PATH needs an absolute path');
    return { kind: 'unix', path };
  }
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9A-Za-z.-]+)):(\d{1,5})$/.exec(text) ?? /^()()(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (!m || !Number.isInteger(port) || port > 65535) throw new UsageError('--listen must be unix:PATH or HOST:PORT');
  return { kind: 'tcp', host: m[1] || m[2] || '127.0.0.1', port };
}

export interface ServeOptions {
  readonly listen: Listen;
  /** The checked --homes template (homes.parseTemplate). */
  readonly homes: string;
  /** The recipient delimiter that splits %u from %e ("+" for Postfix). */
  readonly delimiter: string;
  /** Largest message taken (announced as SIZE). */
  readonly maxSize: number;
  readonly maxConnections: number;
  /** Idle stores kept open across all homes. */
  readonly stores: number;
  /** Mode of the Unix socket (default 0660: the MTA's group may connect). */
  readonly socketMode?: number;
  /** One line per recipient delivered (stdout under systemd or multilog). */
  readonly log: (line: string) => void;
  /** Writes the lines `log` was given since the last call, when it keeps them (called before a
   * batch of replies is sent). */
  readonly flush?: () => void;
  readonly now?: () => number;
  /** Seconds a connection may stay silent (default 300, the client's own usual limit). */
  readonly idleSeconds?: number;
  /** Writer threads for direct deliveries (default WRITERS). */
  readonly writers?: number;
}

/** Writer threads: as many deliveries as write at once (more only queue in the file system). */
const WRITERS = 8;

/** The CRLF line ends of the wire made LF, as an MTA hands a message to `vouch deliver` and as the
 * Maildir keeps it; a lone CR stays. Takes the data as it came (chunks; a CRLF may straddle two)
 * and copies it once, run by run between CRs, into memory the writer threads share. */
export function fromWire(data: Buffer | readonly Buffer[]): Buffer {
  const chunks = Buffer.isBuffer(data) ? [data] : data;
  let size = 0;
  for (const c of chunks) size += c.length;
  // Shared memory: handed to a writer thread (writers.ts) without a copy.
  const out = Buffer.from(new SharedArrayBuffer(size));
  let len = 0;
  /** The last chunk ended in a CR: kept or dropped by the next chunk's first byte. */
  let cr = false;
  for (const c of chunks) {
    if (c.length === 0) continue;
    if (cr) {
      if (c[0] !== 0x0a) out[len++] = 0x0d;
      cr = false;
    }
    let from = 0;
    let at = c.indexOf(0x0d);
    while (at >= 0) {
      len += c.copy(out, len, from, at);
      if (at + 1 === c.length) {
        cr = true;
        from = c.length;
        break;
      }
      if (c[at + 1] !== 0x0a) out[len++] = 0x0d;
      from = at + 1;
      at = c.indexOf(0x0d, from);
    }
    if (from < c.length) len += c.copy(out, len, from);
  }
  if (cr) out[len++] = 0x0d;
  return out.subarray(0, len);
}

/** An LMTP reply for one recipient: the text for a 250, or an Error carrying the 4xx code. */
type Reply = string | (Error & { responseCode: number });

function tempReply(t: TempFail): Reply {
  return Object.assign(new Error(`${t.status} vouch: ${t.message}`), { responseCode: 451 });
}

export class LmtpServer {
  readonly #o: ServeOptions;
  readonly #pool: StorePool;
  readonly #spawner = new Spawner();
  readonly #writers: Writers;
  readonly #configs: ConfigCache;
  /** Replies whose log lines are written before they are sent, a batch at a time. */
  #answers: (() => void)[] = [];
  readonly #smtp: SMTPServer;
  readonly #seams: Omit<DeliverSeams, 'env' | 'onDeadline'>;
  /** Messages between DATA and their replies. */
  #busy = 0;
  #idleWaiters: (() => void)[] = [];
  #stopping: Promise<void> | undefined;

  constructor(o: ServeOptions) {
    this.#o = o;
    this.#pool = new StorePool(o.stores);
    this.#configs = new ConfigCache(Math.max(o.stores, 1000), o.now);
    this.#writers = new Writers(o.writers ?? WRITERS);
    this.#seams = { stores: this.#pool, config: this.#configs.load, once: this.#writers.run, transport: { spawnSync: this.#spawner.spawn } };
    this.#smtp = new SMTPServer({
      lmtp: true,
      name: hostname(),
      banner: 'vouch',
      size: o.maxSize,
      maxClients: o.maxConnections,
      // Commands are short (RFC 5321: 512 octets; addresses with parameters fit in 4096); a longer
      // line is answered 421 and the connection closed.
      maxCommandLength: 4096,
      socketTimeout: (o.idleSeconds ?? 300) * 1000,
      // The 421 to open connections comes from stop(), once their deliveries have answered.
      closeTimeout: 2_147_000_000,
      disabledCommands: ['AUTH', 'STARTTLS'],
      hideSTARTTLS: true,
      authOptional: true,
      disableReverseLookup: true,
      logger: false,
      onData: (stream, session, callback) => this.#onData(stream, session, callback),
    });
    this.#smtp.on('error', () => undefined);
  }

  /** Starts listening; resolves with where. A Unix socket left by a server that is gone is
   * replaced; one that answers is not (another server runs). */
  async start(): Promise<string> {
    const l = this.#o.listen;
    if (l.kind === 'unix') await clearStaleSocket(l.path);
    await new Promise<void>((resolve, reject) => {
      const fail = (err: Error) => reject(err);
      this.#smtp.server.once('error', fail);
      const ready = () => {
        this.#smtp.server.off('error', fail);
        resolve();
      };
      if (l.kind === 'unix') this.#smtp.listen(l.path, ready);
      else this.#smtp.listen(l.port, l.host, ready);
    });
    if (l.kind === 'unix') {
      chmodSync(l.path, this.#o.socketMode ?? 0o660);
      return `unix:${l.path}`;
    }
    const a = this.#smtp.server.address() as AddressInfo;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  }

  /** SIGHUP: every idle store is closed and opened afresh by the next delivery, and every kept
   * config is read again. (An edit to a user's config.toml applies to the next message anyway:
   * see configs.ts.) */
  async reload(): Promise<void> {
    this.#configs.clear();
    await this.#pool.closeIdle();
  }

  /** SIGTERM: takes no new connection or command (421), lets every message already in DATA get
   * its replies, then closes the connections and the stores. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#smtp.close(resolve));
      while (this.#busy > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      for (const c of this.#smtp.connections) {
        c.send(421, 'vouch: shutting down');
        c.close();
      }
      await closed;
      await this.#pool.close();
      await this.#spawner.close();
      await this.#writers.close();
      const l = this.#o.listen;
      if (l.kind === 'unix') {
        try {
          unlinkSync(l.path);
        } catch {
          /* gone already */
        }
      }
    })();
    return this.#stopping;
  }

  /** Open stores now (idle and lent), for tests and the bench. */
  get openStores(): number {
    return this.#pool.size;
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null, replies?: Reply[]) => void): void {
    this.#busy += 1;
    let over = false;
    const finish = () => {
      if (over) return;
      over = true;
      this.#busy -= 1;
      if (this.#busy === 0) for (const w of this.#idleWaiters.splice(0)) w();
    };
    const answer = (replies: Reply[]) => {
      // Sent with the others that end in this turn of the event loop, after their log lines.
      if (this.#answers.push(() => {
        callback(null, replies);
        finish();
      }) === 1) setImmediate(() => this.#sendAnswers());
    };
    // A client gone in the middle of the data: nothing to deliver, nobody to answer.
    let ended = false;
    stream.on('close', () => {
      if (!ended) finish();
    });
    const rcpts = session.envelope.rcptTo.map((r) => r.address);
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => {
      if (!stream.sizeExceeded) chunks.push(c);
    });
    stream.on('error', () => undefined);
    stream.on('end', () => {
      ended = true;
      if (stream.sizeExceeded) {
        // The client did not heed SIZE. Still no 5xx after DATA: the client keeps the message.
        const big = () => Object.assign(new Error('4.3.4 vouch: message too big for this server'), { responseCode: 452 });
        answer(rcpts.map(big));
        return;
      }
      const raw = fromWire(chunks);
      chunks.length = 0;
      const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
      void Promise.all(rcpts.map((r) => this.#deliverOne(from, r, raw))).then(answer);
    });
  }

  /** The log lines of the deliveries that ended since the last batch are written (one write), then
   * their replies are sent: a message answered 250 has its line in the log. */
  #sendAnswers(): void {
    const batch = this.#answers;
    this.#answers = [];
    this.#o.flush?.();
    for (const send of batch) send();
  }

  /** One recipient's delivery, to its reply; never rejects. */
  async #deliverOne(sender: string, address: string, raw: Buffer): Promise<Reply> {
    let timer: NodeJS.Timeout | undefined;
    try {
      const r = splitRecipient(address, this.#o.delimiter);
      if (r === undefined) throw new TempFail('no vouch home for this recipient', '4.3.5');
      const home = homeFor(this.#o.homes, r);
      if (!isFolder(home)) throw new TempFail('no vouch home for this recipient', '4.3.5');
      let onDeadline: (ms: number) => void = () => undefined;
      const late = new Promise<never>((_resolve, reject) => {
        onDeadline = (ms) => {
          clearTimeout(timer);
          timer = setTimeout(() => reject(new TempFail('delivery took too long', '4.3.0')), ms);
        };
      });
      const delivery = deliverMessage(
        { home, envelope: lmtpEnvelope(sender, address, r.ext), raw, now: (this.#o.now ?? Date.now)() },
        // `~` in a served user's config is the folder that holds the vouch home.
        { ...this.#seams, env: { HOME: dirname(home) }, onDeadline },
      );
      // A delivery past its deadline is answered 451 and still runs to its end (the client's retry
      // then finds it done: deliveries are idempotent).
      delivery.catch(() => undefined);
      const report = await Promise.race([delivery, late]);
      this.#o.log(`${address} ${report.line}`);
      return `2.0.0 ${report.line}`;
    } catch (err) {
      const t = asTempFail(err);
      if (process.env['VOUCH_DEBUG']) process.stderr.write(`${String((err as Error)?.stack ?? err)}\n`);
      this.#o.log(`${address} ${t.line()}`);
      return tempReply(t);
    } finally {
      clearTimeout(timer);
    }
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Removes a socket file nobody answers on; refuses when a server is listening there. */
async function clearStaleSocket(path: string): Promise<void> {
  let isSocket = false;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (!isSocket) throw new UsageError(`${path} exists and is not a socket`);
  const answers = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (answers) throw new UsageError(`another server listens on ${path}`);
  unlinkSync(path);
}

/** The command line of `vouch serve`, as commander hands it over. */
export interface ServeArgs {
  readonly listen: string;
  readonly homes: string;
  readonly delimiter: string;
  readonly maxSize: string;
  readonly maxConnections: number;
  readonly stores: number;
  readonly socketMode: string;
}

/** `vouch serve`: checks the arguments, listens, prints one line, and runs until SIGTERM or SIGINT
 * (drain, then exit 0); SIGHUP closes the idle stores. */
export async function runServe(a: ServeArgs): Promise<void> {
  const { parseTemplate } = await import('./homes.js');
  const { parseSize } = await import('../home/duration.js');
  const maxSize = parseSize(a.maxSize);
  if (maxSize === undefined) throw new UsageError('--max-size must be a size like "64M"');
  if (a.delimiter.length !== 1 || /[@/\s]/.test(a.delimiter)) throw new UsageError('--delimiter must be one character like "+" or "-"');
  if (!/^0?[0-7]{3}$/.test(a.socketMode)) throw new UsageError('--socket-mode must be an octal mode like 0660');
  // Lines kept and written together: before each batch of replies, and at the end of the turn for
  // the server's own (one write to the pipe or terminal instead of one a recipient).
  let kept: string[] = [];
  const flush = () => {
    if (kept.length === 0) return;
    const text = `${kept.join('\n')}\n`;
    kept = [];
    process.stdout.write(text);
  };
  const log = (line: string) => {
    if (kept.push(line) === 1) setImmediate(flush);
  };
  const server = new LmtpServer({
    listen: parseListen(a.listen),
    homes: parseTemplate(a.homes),
    delimiter: a.delimiter,
    maxSize,
    maxConnections: a.maxConnections,
    stores: a.stores,
    socketMode: parseInt(a.socketMode, 8),
    log,
    flush,
  });
  const where = await server.start();
  log(`vouch: serving LMTP on ${where} for ${a.homes}`);
  const stop = () => {
    log('vouch: stopping: finishing the deliveries in progress');
    void server.stop().then(() => {
      log('vouch: stopped');
      flush();
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.on('SIGHUP', () => {
    void server.reload().then(() => log('vouch: reloaded (idle stores closed, configs to be read again)'));
  });
}
