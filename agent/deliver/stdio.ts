// The message on fd 0 and the log line on fd 1, with plain blocking calls. `vouch deliver` has
// nothing else to do meanwhile, and setting up process.stdin or process.stdout (a net.Socket for a
// pipe) costs about 3 ms each: more than all the reads and writes of a 20 KB delivery.

import { fstatSync, readSync, writeSync } from 'node:fs';

const CHUNK = 1 << 16;

/** The whole of fd 0, byte for byte, in one buffer: sized from fstat for a file (qmail hands the
 * message as one), grown by doubling for a pipe (Postfix). A non-blocking descriptor (EAGAIN) hands
 * the rest to the stream, keeping what was already read; `onWait` is told before that first wait. */
export async function readInput(fd = 0, stream: () => AsyncIterable<Buffer | string> = () => process.stdin, onWait?: () => void): Promise<Buffer> {
  const st = fstatSync(fd);
  let buf = Buffer.allocUnsafe(st.isFile() && st.size > 0 ? st.size + 1 : CHUNK);
  let len = 0;
  for (;;) {
    if (len === buf.length) {
      const bigger = Buffer.allocUnsafe(buf.length * 2);
      buf.copy(bigger, 0, 0, len);
      buf = bigger;
    }
    let n: number;
    try {
      n = readSync(fd, buf, len, buf.length - len, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EINTR') continue;
      if (code !== 'EAGAIN') throw err;
      onWait?.();
      return restFrom(buf.subarray(0, len), stream());
    }
    if (n === 0) return buf.subarray(0, len);
    len += n;
  }
}

async function restFrom(head: Buffer, input: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks = [head];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c, 'latin1') : c);
  return Buffer.concat(chunks);
}

/** Writes one line to fd 1 (qmail-local and Postfix read it from a pipe). A pipe that cannot take
 * it now (EAGAIN) gets it through process.stdout, which queues it. Never throws: the line is the
 * log, the exit code is the answer, and a closed stdout must not turn a delivery into a crash. */
export function writeLine(line: string, fd = 1): void {
  const bytes = Buffer.from(`${line}\n`);
  let off = 0;
  try {
    while (off < bytes.length) off += writeSync(fd, bytes, off);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EAGAIN') process.stdout.write(bytes.subarray(off), () => undefined);
  }
}
