// A raw LMTP client for the tests: connects to `vouch serve` (TCP or a Unix socket), writes
// commands (pipelined when asked) and reads the replies, multi-line ones whole. Data is sent
// dot-stuffed with CRLF line ends, as an MTA sends it.

import { connect, type Socket } from 'node:net';

export interface Reply {
  readonly code: number;
  /** Every line's text after the code, joined by newlines. */
  readonly text: string;
}

export type Target = { readonly port: number; readonly host?: string } | { readonly path: string };

export class LmtpClient {
  readonly #sock: Socket;
  #buf = '';
  readonly #replies: Reply[] = [];
  #wake: (() => void) | undefined;
  #closed = false;

  private constructor(sock: Socket) {
    this.#sock = sock;
    sock.on('data', (d: Buffer) => {
      this.#buf += d.toString('latin1');
      this.#parse();
    });
    const end = () => {
      this.#closed = true;
      this.#wake?.();
    };
    sock.on('close', end);
    sock.on('error', end);
  }

  static async open(target: Target): Promise<LmtpClient> {
    const sock = 'path' in target ? connect(target.path) : connect(target.port, target.host ?? '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      sock.once('connect', resolve);
      sock.once('error', reject);
    });
    return new LmtpClient(sock);
  }

  #parse(): void {
    let lines: string[] = [];
    for (;;) {
      const nl = this.#buf.indexOf('\r\n');
      if (nl < 0) break;
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 2);
      lines.push(line);
      if (line.length < 4 || line[3] === ' ') {
        this.#replies.push({ code: Number(lines[0]?.slice(0, 3)), text: lines.map((l) => l.slice(4)).join('\n') });
        lines = [];
      }
    }
    // Unfinished multi-line reply: put it back.
    if (lines.length > 0) this.#buf = `${lines.map((l) => `${l}\r\n`).join('')}${this.#buf}`;
    this.#wake?.();
  }

  /** The next `n` replies (rejects when the server closes first). */
  async replies(n: number, ms = 20_000): Promise<Reply[]> {
    const end = Date.now() + ms;
    while (this.#replies.length < n) {
      if (this.#closed) throw new Error(`connection closed after ${this.#replies.length} of ${n} replies`);
      if (Date.now() > end) throw new Error(`timed out waiting for ${n} replies (got ${this.#replies.length})`);
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return this.#replies.splice(0, n);
  }

  async reply(): Promise<Reply> {
    return (await this.replies(1))[0] as Reply;
  }

  /** Writes raw bytes (commands end with CRLF here). */
  write(bytes: string | Buffer): void {
    this.#sock.write(bytes);
  }

  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.reply();
  }

  /** One whole transaction: MAIL, each RCPT, DATA, the message and its dot, pipelined in one
   * write; returns MAIL's, RCPTs', DATA's replies and then one per accepted recipient. */
  async send(from: string, to: readonly string[], message: Buffer | string, mailArgs = ''): Promise<{ mail: Reply; rcpt: Reply[]; data: Reply; per: Reply[] }> {
    this.write(`MAIL FROM:<${from}>${mailArgs}\r\n${to.map((r) => `RCPT TO:<${r}>\r\n`).join('')}DATA\r\n`);
    const [mail, ...rest] = await this.replies(2 + to.length);
    const rcpt = rest.slice(0, to.length);
    const data = rest[to.length] as Reply;
    if (data.code !== 354) return { mail: mail as Reply, rcpt, data, per: [] };
    this.write(Buffer.concat([wire(message), Buffer.from('.\r\n')]));
    const per = await this.replies(rcpt.filter((r) => r.code < 300).length);
    return { mail: mail as Reply, rcpt, data, per };
  }

  async lhlo(name = 'mx.test'): Promise<Reply> {
    return this.command(`LHLO ${name}`);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Drops the connection without a word, as a crashing client would. */
  destroy(): void {
    this.#sock.destroy();
  }

  close(): void {
    this.#sock.end('QUIT\r\n');
    this.#sock.destroySoon();
  }
}

/** A message as it goes on the wire: CRLF line ends, leading dots doubled, ending in CRLF. */
export function wire(message: Buffer | string): Buffer {
  let text = (typeof message === 'string' ? Buffer.from(message) : message).toString('latin1').replace(/\r?\n/g, '\r\n');
  if (!text.endsWith('\r\n')) text += '\r\n';
  text = text.replace(/^\./gm, '..');
  return Buffer.from(text, 'latin1');
}

/** Greeting and LHLO done: a client ready for a transaction. */
export async function lmtpSession(target: Target): Promise<LmtpClient> {
  const c = await LmtpClient.open(target);
  const hello = await c.reply();
  if (hello.code !== 220) throw new Error(`greeting ${hello.code} ${hello.text}`);
  const l = await c.lhlo();
  if (l.code !== 250) throw new Error(`LHLO ${l.code} ${l.text}`);
  return c;
}
