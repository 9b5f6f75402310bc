// A small authoritative DNS server for the tests, on 127.0.0.1 (UDP and TCP, one port): it answers
// from a table of records and can stay silent or answer SERVFAIL for chosen names. dns-packet
// does the wire format.

import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import * as packet from 'dns-packet';

export type Behaviour = 'silent' | 'servfail';

export interface DnsServer {
  readonly port: number;
  /** "127.0.0.1:PORT", for [dns] servers. */
  readonly address: string;
  /** Adds records: TXT values as strings, A/AAAA as addresses. */
  txt(name: string, ...values: string[]): void;
  a(name: string, ...addresses: string[]): void;
  /** Makes every query for a name (or, with "*", for every name) behave so. */
  behave(name: string, b: Behaviour): void;
  /** The names asked, in order ("TYPE name"). */
  readonly asked: string[];
  close(): Promise<void>;
}

type Answer = packet.Answer;

export async function startDns(): Promise<DnsServer> {
  const records = new Map<string, Answer[]>();
  const behaviours = new Map<string, Behaviour>();
  const asked: string[] = [];
  const key = (name: string, type: string) => `${type} ${name.toLowerCase().replace(/\.$/, '')}`;
  const add = (name: string, a: Answer) => {
    const k = key(name, a.type);
    records.set(k, [...(records.get(k) ?? []), a]);
  };

  /** The response to one query, or undefined to stay silent. */
  const respond = (msg: Buffer): Buffer | undefined => {
    let q: packet.Packet;
    try {
      q = packet.decode(msg);
    } catch {
      return undefined;
    }
    const question = q.questions?.[0];
    if (question === undefined) return undefined;
    const name = question.name.toLowerCase().replace(/\.$/, '');
    asked.push(`${question.type} ${name}`);
    const b = behaviours.get(name) ?? behaviours.get('*');
    if (b === 'silent') return undefined;
    const base = { id: q.id, type: 'response' as const, flags: packet.AUTHORITATIVE_ANSWER, questions: [question] };
    if (b === 'servfail') return packet.encode({ ...base, flags: 2 /* rcode SERVFAIL */ });
    const answers = records.get(key(name, question.type)) ?? [];
    // NXDOMAIN when nothing at all is known under the name, NOERROR/no data otherwise.
    const exists = [...records.keys()].some((k) => k.endsWith(` ${name}`) || k.endsWith(`.${name}`));
    return packet.encode({ ...base, flags: packet.AUTHORITATIVE_ANSWER | (answers.length === 0 && !exists ? 3 : 0), answers });
  };

  const udp = dgram.createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    const r = respond(msg);
    if (r !== undefined) udp.send(r, rinfo.port, rinfo.address);
  });
  udp.bind(0, '127.0.0.1');
  await once(udp, 'listening');
  const port = udp.address().port;

  const tcp = net.createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const r = respond(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        if (r !== undefined) sock.write(Buffer.concat([Buffer.from([r.length >> 8, r.length & 255]), r]));
      }
    });
  });
  tcp.listen(port, '127.0.0.1');
  await once(tcp, 'listening');

  return {
    port,
    address: `127.0.0.1:${port}`,
    asked,
    txt: (name, ...values) => {
      // TXT strings are at most 255 octets each: long ones (DKIM keys) go in pieces.
      for (const v of values) {
        const parts: Buffer[] = [];
        for (let i = 0; i < v.length; i += 255) parts.push(Buffer.from(v.slice(i, i + 255)));
        add(name, { type: 'TXT', name, ttl: 60, data: parts });
      }
    },
    a: (name, ...addresses) => {
      for (const addr of addresses) add(name, { type: addr.includes(':') ? 'AAAA' : 'A', name, ttl: 60, data: addr } as Answer);
    },
    behave: (name, b) => behaviours.set(name.toLowerCase(), b),
    close: async () => {
      udp.close();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
    },
  };
}
