// The local blocklist fed from late verdicts (held mail that expired unconfirmed, mail the user
// deleted with "blacklist", mail the classifier later calls spam), and its exports for the SMTP
// layer: an expensive late verdict turned into a cheap early refusal.

import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Config } from '../home/config.js';
import { canonicalIp, familyOf, isLocalIp, netOf, parseNet, type Net } from '../mail/ip.js';
import { mtaNames } from '../auth/screen.js';
import { Headers } from '../mail/header.js';
import { clientOf } from '../mail/received.js';
import { recordBad } from '../policy/blocklist.js';
import { claimNotes } from '../store/journal.js';
import type { BlockChange, BlockEntry, Held, Store } from '../store/store.js';

/** The client IP a held message's signals name, when it is a real remote address. */
export function clientIpOf(h: Pick<Held, 'signals'>): string | undefined {
  const client = h.signals['client'];
  const ip = client !== null && typeof client === 'object' && 'ip' in client && typeof client.ip === 'string' ? canonicalIp(client.ip) : undefined;
  return ip === undefined || isLocalIp(ip) ? undefined : ip;
}

/** The network a client is listed by: the address itself (IPv4), its /ipv6_prefix (IPv6). */
export function listedNet(ip: string, config: Config): Net {
  return familyOf(ip) === 4 ? netOf(ip, 32) : netOf(ip, config.blocklist.ipv6_prefix);
}

/** Records the clients of bad held mail; never one whose sender is whitelisted now, nor (the
 * store sees to it) a network whitelisted or released mail came from. Returns how many. */
export async function recordBadClients(store: Store, config: Config, held: readonly Pick<Held, 'sender' | 'signals'>[], now: number, why: string): Promise<number> {
  return (await listBadClients(store, config, held, now, why)).length;
}

/** recordBadClients, saying what each entry was before and became (for an undo). */
export async function listBadClients(store: Store, config: Config, held: readonly Pick<Held, 'sender' | 'signals'>[], now: number, why: string): Promise<BlockChange[]> {
  const out: BlockChange[] = [];
  const aging = { period: config.blocklist.period, maxPeriod: config.blocklist.max_period };
  for (const h of held) {
    const ip = clientIpOf(h);
    if (ip === undefined) continue;
    if ((await store.lookup(h.sender))?.list === 'white') continue;
    const net = listedNet(ip, config).text;
    let before: BlockEntry | undefined;
    const after = await store.recordBadClient(net, (prev) => {
      before = prev;
      return recordBad(prev, net, now, why, aging);
    });
    if (after !== undefined) out.push({ net, before, after });
  }
  return out;
}

/** The client IPs whitelisted mail came from, as `vouch deliver` noted them with its journal
 * claims (deliver.ts clientNote): TCPREMOTEIP, or the top Received: lines read the way a held
 * message's are (only lines the user's own MTA wrote count). Duplicates removed. */
export function whitelistedClients(home: string, config: Config, now: number): string[] {
  const names = mtaNames(config);
  const ips = new Set<string>();
  for (const note of claimNotes(home, now)) {
    // A note is one `ip` line (the SMTP server's word) or `received` lines, never both: an `ip`
    // counts only as the whole note.
    const lines = note.split('\n');
    const fields: { name: string; value: string }[] = [];
    let envIp: string | undefined;
    if (lines.length === 1 && lines[0]?.startsWith('ip ')) envIp = lines[0].slice(3).trim();
    else for (const line of lines) if (line.startsWith('received ')) fields.push({ name: 'received', value: line.slice(9) });
    const vars: NodeJS.ProcessEnv = envIp === undefined ? {} : { TCPREMOTEIP: envIp };
    const ip = clientOf(new Headers(fields, 0), names, vars).ip;
    if (ip !== undefined && !isLocalIp(ip)) ips.add(ip);
  }
  return [...ips];
}

/** Marks the networks whitelisted mail came from in the last week as good (never listed, and off
 * the list unless listed by hand) before anything is listed or exported. Returns how many. */
export async function foldWhitelistedClients(store: Store, config: Config, now: number): Promise<number> {
  const ips = whitelistedClients(store.home, config, now);
  for (const ip of ips) await store.markGoodClient(ip, config.blocklist.ipv6_prefix, now);
  return ips.length;
}

/** For the classifier: a held message it later calls spam lists its client. */
export async function recordSpamClient(store: Store, config: Config, held: Pick<Held, 'sender' | 'signals'>, now: number): Promise<number> {
  return recordBadClients(store, config, [held], now, 'classifier: spam');
}

export const FORMATS = ['rbldnsd', 'rbldnsd6', 'tcprules', 'postfix', 'postfix-cidr', 'plain'] as const;
export type ExportFormat = (typeof FORMATS)[number];

const TEXT = 'listed by vouch for sending unwanted mail';

/** IPv4 network as the octet-boundary prefixes tcprules and Postfix hash maps match ("192.0.2."
 * style); a /22 becomes four /24s. Networks wider than /16 that are not on a boundary are given as
 * their /16s (at most 256 lines each). */
function octetPrefixes(n: Net): string[] {
  const parts = n.addr.split('.').map(Number);
  const whole = Math.floor(n.len / 8);
  if (n.len % 8 === 0) return [parts.slice(0, whole).join('.')];
  const count = 2 ** (8 - (n.len % 8));
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const p = [...parts.slice(0, whole), (parts[whole] ?? 0) + i];
    out.push(p.join('.'));
  }
  return out;
}

/** The listed networks in one format, as the text of the file. */
export function exportText(entries: readonly BlockEntry[], format: ExportFormat, now: number): string {
  const nets = entries.map((e) => parseNet(e.net)).filter((n): n is Net => n !== undefined);
  const v4 = nets.filter((n) => n.family === 4);
  const v6 = nets.filter((n) => n.family === 6);
  const head = `# vouch local blocklist, ${new Date(now).toISOString()}: ${nets.length} networks\n`;
  const skipped = (what: string) => (v6.length > 0 ? `# ${v6.length} IPv6 networks are not in this format: ${what}\n` : '');
  const hostOrNet = (n: Net) => (n.len === (n.family === 4 ? 32 : 128) ? n.addr : n.text);
  switch (format) {
    case 'plain':
      return head + nets.map((n) => `${hostOrNet(n)}\n`).join('');
    case 'rbldnsd':
      // An ip4set dataset: the first line gives the A and TXT answers for every entry.
      return `${head}${skipped('export rbldnsd6 for an ip6trie dataset')}:127.0.0.2:${TEXT}\n${v4.map((n) => `${hostOrNet(n)}\n`).join('')}`;
    case 'rbldnsd6':
      return `${head}:127.0.0.2:${TEXT}\n${v6.map((n) => `${n.text}\n`).join('')}`;
    case 'tcprules': {
      // tcpserver -x: the rule sets RBLSMTPD, and rblsmtpd refuses the client with a 553 ("-").
      const rule = `allow,RBLSMTPD="-${TEXT}"`;
      const lines = v4.flatMap((n) => (n.len === 32 ? [n.addr] : octetPrefixes(n).map((p) => `${p}.`)));
      return `${head}${skipped('use rbldnsd6 with rblsmtpd -r')}${lines.map((l) => `${l}:${rule}\n`).join('')}`;
    }
    case 'postfix': {
      const lines = v4.flatMap((n) => (n.len === 32 ? [n.addr] : octetPrefixes(n)));
      return `${head}${skipped('use postfix-cidr')}${lines.map((l) => `${l} REJECT ${TEXT}\n`).join('')}`;
    }
    case 'postfix-cidr':
      return head + nets.map((n) => `${n.text} REJECT ${TEXT}\n`).join('');
  }
}

/** Writes `text` to `path` atomically: a temporary file beside it, fsynced, renamed over. The
 * MTA's user reads it, so it is 0644. */
export function writeAtomic(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(tmp, 'w', 0o644);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      /* gone */
    }
    throw err;
  }
  closeSync(fd);
  renameSync(tmp, path);
}
