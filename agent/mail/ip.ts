// Client addresses and networks: IPv4 and IPv6 in one canonical text form, networks as
// "ADDR/LEN", the reversed names DNS blocklists are asked under. ipaddr.js does the parsing.

import ipaddr from 'ipaddr.js';

/** A network in canonical form: `addr` is the first address, `text` is "addr/len". */
export interface Net {
  readonly family: 4 | 6;
  readonly addr: string;
  readonly len: number;
  readonly text: string;
}

function parse(text: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  if (text.length > 64 || !ipaddr.isValid(text)) return undefined;
  try {
    const a = ipaddr.parse(text);
    // ::ffff:192.0.2.1 is the IPv4 client it wraps.
    return a.kind() === 'ipv6' && (a as ipaddr.IPv6).isIPv4MappedAddress() ? (a as ipaddr.IPv6).toIPv4Address() : a;
  } catch {
    return undefined;
  }
}

/** The canonical text of an IP address (IPv6 compressed, lower case; IPv4-mapped IPv6 as IPv4),
 * or undefined when `text` is not exactly one address in the usual notations (dotted quad, RFC
 * 5952). Odd IPv4 forms ("010.1", "0x7f.1") are refused. */
export function canonicalIp(text: string): string | undefined {
  if (text.includes(':')) {
    const a = parse(text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text);
    return a?.toString();
  }
  return ipaddr.IPv4.isValidFourPartDecimal(text) ? parse(text)?.toString() : undefined;
}

export function familyOf(ip: string): 4 | 6 {
  return ip.includes(':') ? 6 : 4;
}

/** True for loopback and unspecified addresses (a content filter's re-injection, a local program). */
export function isLocalIp(ip: string): boolean {
  const a = parse(ip);
  if (a === undefined) return false;
  const r = a.range();
  return r === 'loopback' || r === 'unspecified';
}

/** "IP" or "IP/LEN" as a network with its host bits cleared; undefined when it is neither. */
export function parseNet(text: string): Net | undefined {
  const slash = text.indexOf('/');
  const ip = canonicalIp(slash < 0 ? text : text.slice(0, slash));
  if (ip === undefined) return undefined;
  const family = familyOf(ip);
  const max = family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const l = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(l)) return undefined;
    len = Number(l);
    if (len > max || len < (family === 4 ? 8 : 16)) return undefined;
  }
  return netOf(ip, len);
}

/** The network of length `len` that holds the address `ip` (canonical). */
export function netOf(ip: string, len: number): Net {
  const a = parse(ip);
  if (a === undefined) throw new Error('netOf: not an address');
  const bytes = a.toByteArray();
  for (let bit = len; bit < bytes.length * 8; bit++) {
    const i = bit >> 3;
    bytes[i] = (bytes[i] ?? 0) & ~(0x80 >> (bit & 7));
  }
  const addr = ipaddr.fromByteArray(bytes).toString();
  const family = bytes.length === 4 ? 4 : 6;
  return { family, addr, len, text: `${addr}/${len}` };
}

/** Every network that holds `ip`, from the address itself to the widest a list may hold: the keys
 * under which a blocklist entry for it could be stored. */
export function netsHolding(ip: string): string[] {
  const max = familyOf(ip) === 4 ? 32 : 128;
  const min = max === 32 ? 8 : 16;
  const out: string[] = [];
  for (let len = max; len >= min; len--) out.push(netOf(ip, len).text);
  return out;
}

/** The name a DNS blocklist is asked under: 192.0.2.1 in zone z → 1.2.0.192.z; IPv6 by nibbles. */
export function reversedName(ip: string, zone: string): string {
  const a = parse(ip);
  if (a === undefined) throw new Error('reversedName: not an address');
  const bytes = a.toByteArray();
  const labels: string[] = [];
  if (bytes.length === 4) for (const b of bytes) labels.unshift(String(b));
  else for (const b of bytes) labels.unshift((b & 15).toString(16), (b >> 4).toString(16));
  return `${labels.join('.')}.${zone}`;
}
