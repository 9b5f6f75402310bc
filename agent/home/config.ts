// The user's config.toml: read once, checked against the table of keys below, returned frozen.
// Unknown keys and bad values are errors that name the key.

import { readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { ConfigError } from '../failure/failure.js';
import { parseDuration, parseSize } from './duration.js';
import { isPlainAddress } from '../mail/address.js';

export interface Config {
  readonly identity: {
    readonly address: string;
    readonly delimiter: '-' | '+';
    readonly name: string;
  };
  readonly delivery: {
    readonly maildir: string;
    readonly blacklist: 'drop' | 'junk';
    readonly junk_folder: string;
    readonly max_size: number;
    readonly header_limit: number;
    readonly deadline: number;
  };
  readonly send: {
    readonly transport: 'sendmail' | 'smtp' | 'file';
    readonly sendmail: string;
    readonly smtp_host: string;
    readonly smtp_port: number;
    readonly smtp_security: 'starttls' | 'tls' | 'none';
    readonly smtp_user: string;
    readonly smtp_password: string;
    readonly file_dir: string;
    readonly whitelist_replies: boolean;
    readonly reply_lifetime: number;
    readonly tag_sender: 'off' | 'envelope' | 'from';
    readonly tag_lifetime: number;
  };
  readonly challenge: {
    readonly enabled: boolean;
    readonly rate_window: number;
    readonly per_domain_hourly: number;
    readonly global_hourly: number;
    readonly authserv_ids: readonly string[];
    readonly templates: string;
    readonly require: 'aligned' | 'not-failed' | 'none';
    readonly on_dns_error: 'headers' | 'hold';
    readonly require_visible_recipient: boolean;
  };
  readonly trust: {
    /** Host names the user's own MTA writes after "by" in Received:; [] = the machine's host name. */
    readonly mta_names: readonly string[];
  };
  readonly dns: {
    /** "IP" or "IP:PORT" ("[IPv6]:PORT"); [] = the system's resolvers. */
    readonly servers: readonly string[];
    readonly timeout: number;
    readonly blocklists: readonly string[];
  };
  readonly blocklist: {
    readonly period: number;
    readonly max_period: number;
    readonly ipv6_prefix: number;
  };
  readonly pending: {
    readonly lifetime: number;
    readonly trash: number;
  };
  readonly web: {
    readonly listen: string;
    readonly password_hash: string;
    readonly url: string;
    readonly session_idle: number;
    readonly session_lifetime: number;
  };
  readonly classifier: {
    readonly enabled: boolean;
    readonly command: string;
    readonly wordlists: string;
    readonly timeout: number;
    readonly suppress: readonly ('spam' | 'unsure')[];
    readonly max_size: number;
    readonly learn_expired: boolean;
    readonly learn_whitelisted: number;
  };
}

type Kind =
  | { type: 'string'; check?: (v: string) => string | undefined }
  | { type: 'path' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'int'; min: number; max: number }
  | { type: 'bool' }
  | { type: 'duration'; max?: { ms: number; text: string } }
  | { type: 'size' }
  | { type: 'strings'; check?: (v: string) => string | undefined }
  | { type: 'choices'; values: readonly string[] };

interface KeySpec {
  readonly kind: Kind;
  /** The default as it would be written in TOML; undefined = required. */
  readonly def: string | number | boolean | readonly string[] | undefined;
}

const address = (v: string) => (isPlainAddress(v) ? undefined : 'must be a plain address like alice@example.org');
const listen = (v: string) => (/^(\[[0-9a-f:.]+\]|[0-9a-zA-Z.-]+):\d{1,5}$/.test(v) ? undefined : 'must be HOST:PORT');
const url = (v: string) => (v === '' || /^https?:\/\/[^\s<>"']+$/.test(v) ? undefined : 'must be "" or an http:// or https:// URL');
const hostName = (v: string) => (/^[a-z0-9]([a-z0-9-]{0,62}\.?)*$/i.test(v) && v.length <= 253 ? undefined : `"${v.slice(0, 40)}" is not a host name`);
const zone = (v: string) => (hostName(v) === undefined && v.includes('.') ? undefined : `"${v.slice(0, 40)}" is not a DNS zone like zen.example.org`);
const dnsServer = (v: string) => (dnsServerOk(v) ? undefined : `"${v.slice(0, 40)}" must be "IP" or "IP:PORT" ("[IPv6]:PORT")`);
const folder = (v: string) => (/^\.[^/\0]+$/.test(v) && !v.includes('..') ? undefined : 'must be a Maildir++ folder name like .Junk');

/** node:net's isIP, loaded on first use: node:net brings all of node's streams with it, which a
 * delivery whose config.cache matches (every whitelisted one) must not pay for. */
function isIP(v: string): number {
  return (createRequire(import.meta.url)('node:net') as { isIP(input: string): number }).isIP(v);
}

/** "IP", "IP:PORT", "IPv6" or "[IPv6]:PORT", as node:dns setServers() takes them. */
function dnsServerOk(v: string): boolean {
  const port = (p: string) => /^\d{1,5}$/.test(p) && Number(p) > 0 && Number(p) < 65536;
  if (isIP(v) !== 0) return true;
  if (v.startsWith('[')) {
    const end = v.indexOf(']');
    return end > 0 && isIP(v.slice(1, end)) === 6 && v[end + 1] === ':' && port(v.slice(end + 2));
  }
  const colon = v.lastIndexOf(':');
  return colon > 0 && isIP(v.slice(0, colon)) === 4 && port(v.slice(colon + 1));
}

/** Every key vouch reads, with its type and default. config.example.toml documents each one. */
export const SCHEMA: Readonly<Record<string, Readonly<Record<string, KeySpec>>>> = {
  identity: {
    address: { kind: { type: 'string', check: address }, def: undefined },
    delimiter: { kind: { type: 'enum', values: ['-', '+'] }, def: '-' },
    name: { kind: { type: 'string' }, def: '' },
  },
  delivery: {
    maildir: { kind: { type: 'path' }, def: '~/Maildir' },
    blacklist: { kind: { type: 'enum', values: ['drop', 'junk'] }, def: 'drop' },
    junk_folder: { kind: { type: 'string', check: folder }, def: '.Junk' },
    max_size: { kind: { type: 'size' }, def: '64M' },
    header_limit: { kind: { type: 'size' }, def: '1M' },
    // Below the MTA's own limit (Postfix kills a command after command_time_limit, 1000s), and far
    // inside Node's timer range (2^31-1 ms, about 24.8 days: beyond it a timer fires at once).
    deadline: { kind: { type: 'duration', max: { ms: 900_000, text: '900s' } }, def: '300s' },
  },
  send: {
    transport: { kind: { type: 'enum', values: ['sendmail', 'smtp', 'file'] }, def: 'sendmail' },
    sendmail: { kind: { type: 'path' }, def: '/var/qmail/bin/qmail-inject' },
    smtp_host: { kind: { type: 'string' }, def: '127.0.0.1' },
    smtp_port: { kind: { type: 'int', min: 1, max: 65535 }, def: 25 },
    smtp_security: { kind: { type: 'enum', values: ['starttls', 'tls', 'none'] }, def: 'starttls' },
    smtp_user: { kind: { type: 'string' }, def: '' },
    smtp_password: { kind: { type: 'string' }, def: '' },
    file_dir: { kind: { type: 'path' }, def: 'outbox' },
    whitelist_replies: { kind: { type: 'bool' }, def: false },
    reply_lifetime: { kind: { type: 'duration' }, def: '180d' },
    tag_sender: { kind: { type: 'enum', values: ['off', 'envelope', 'from'] }, def: 'off' },
    tag_lifetime: { kind: { type: 'duration' }, def: '30d' },
  },
  challenge: {
    enabled: { kind: { type: 'bool' }, def: true },
    rate_window: { kind: { type: 'duration' }, def: '24h' },
    per_domain_hourly: { kind: { type: 'int', min: 0, max: 1_000_000 }, def: 10 },
    global_hourly: { kind: { type: 'int', min: 0, max: 1_000_000 }, def: 60 },
    authserv_ids: { kind: { type: 'strings' }, def: [] },
    templates: { kind: { type: 'path' }, def: 'templates' },
    require: { kind: { type: 'enum', values: ['aligned', 'not-failed', 'none'] }, def: 'aligned' },
    on_dns_error: { kind: { type: 'enum', values: ['headers', 'hold'] }, def: 'headers' },
    require_visible_recipient: { kind: { type: 'bool' }, def: false },
  },
  trust: {
    mta_names: { kind: { type: 'strings', check: hostName }, def: [] },
  },
  dns: {
    servers: { kind: { type: 'strings', check: dnsServer }, def: [] },
    // The budget of a delivery's DNS work: well inside delivery.deadline (at most 900s).
    timeout: { kind: { type: 'duration', max: { ms: 60_000, text: '60s' } }, def: '3s' },
    blocklists: { kind: { type: 'strings', check: zone }, def: [] },
  },
  blocklist: {
    period: { kind: { type: 'duration' }, def: '7d' },
    max_period: { kind: { type: 'duration' }, def: '180d' },
    ipv6_prefix: { kind: { type: 'int', min: 32, max: 128 }, def: 64 },
  },
  pending: {
    lifetime: { kind: { type: 'duration' }, def: '14d' },
    trash: { kind: { type: 'duration' }, def: '7d' },
  },
  web: {
    listen: { kind: { type: 'string', check: listen }, def: '127.0.0.1:8025' },
    password_hash: { kind: { type: 'string' }, def: '' },
    url: { kind: { type: 'string', check: url }, def: '' },
    session_idle: { kind: { type: 'duration', max: { ms: 365 * 86_400_000, text: '365d' } }, def: '12h' },
    session_lifetime: { kind: { type: 'duration', max: { ms: 365 * 86_400_000, text: '365d' } }, def: '7d' },
  },
  classifier: {
    enabled: { kind: { type: 'bool' }, def: true },
    command: { kind: { type: 'path' }, def: '/usr/bin/bogofilter' },
    wordlists: { kind: { type: 'path' }, def: 'bogofilter' },
    timeout: { kind: { type: 'duration' }, def: '2s' },
    suppress: { kind: { type: 'choices', values: ['spam', 'unsure'] }, def: ['spam'] },
    max_size: { kind: { type: 'size' }, def: '512K' },
    learn_expired: { kind: { type: 'bool' }, def: true },
    learn_whitelisted: { kind: { type: 'int', min: 0, max: 1_000_000 }, def: 0 },
  },
};

/** The largest classifier.max_size: a held body's first stored piece (store.BODY_CHUNK) holds it. */
const CLASSIFIER_MAX_SIZE = 1024 * 1024;
/** The longest classifier.timeout: well inside any delivery's deadline. */
const CLASSIFIER_MAX_TIMEOUT = 60_000;

/** Reads and checks `config.toml` in the home. Paths in it are resolved: `~` is the user's home,
 * a relative path is relative to the vouch home. */
export function loadConfig(home: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(join(home, 'config.toml'), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(code === 'ENOENT' ? 'no config.toml in the vouch home (run vouch init)' : 'cannot read config.toml');
  }
  const userHome = env['HOME'] || homedir();
  const cached = readCache(home, text, userHome);
  if (cached !== undefined) return cached;
  const config = parseConfig(text, home, env);
  writeCache(home, { v: CACHE_VERSION, text, home, userHome, config });
  return config;
}

// The checked config, kept beside config.toml as JSON (config.cache) for the next process: parsing
// the TOML costs a delivery about a millisecond, JSON.parse a twentieth of that. The cache is used
// only for exactly the same text, home and user home, so an edit to config.toml is read at once.

const CACHE = 'config.cache';
// 2: delivery.deadline bounded (a cache of a config now refused must not be believed).
// 3: the sender-authentication keys ([trust], [dns], [blocklist], challenge.require, …).
// 4: pending.trash added.
// 5: [classifier] added (a cache written before has no such section).
// 6: web.session_idle and web.session_lifetime added.
const CACHE_VERSION = 6;

interface CacheFile {
  readonly v: number;
  readonly text: string;
  readonly home: string;
  readonly userHome: string;
  readonly config: Config;
}

function readCache(home: string, text: string, userHome: string): Config | undefined {
  try {
    const c = JSON.parse(readFileSync(join(home, CACHE), 'utf8')) as Partial<CacheFile>;
    if (c.v !== CACHE_VERSION || c.text !== text || c.home !== home || c.userHome !== userHome || typeof c.config !== 'object' || c.config === null) return undefined;
    return deepFreeze(c.config);
  } catch {
    return undefined;
  }
}

/** Best effort: a home we cannot write to only means the next process parses again. */
function writeCache(home: string, c: CacheFile): void {
  const tmp = join(home, `${CACHE}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, JSON.stringify(c), { mode: 0o600 });
    renameSync(tmp, join(home, CACHE));
  } catch {
    try {
      unlinkSync(tmp);
    } catch {
      /* never made */
    }
  }
}

function deepFreeze<T>(o: T): T {
  if (typeof o === 'object' && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/** smol-toml, loaded on first use: a delivery whose config.cache matches never parses TOML, and
 * so does not read or compile the parser either. */
function toml(): typeof import('smol-toml') {
  return createRequire(import.meta.url)('smol-toml') as typeof import('smol-toml');
}

export function parseConfig(text: string, home: string, env: NodeJS.ProcessEnv = process.env): Config {
  let doc: Record<string, unknown>;
  try {
    doc = toml().parse(text) as Record<string, unknown>;
  } catch (err) {
    const line = (err as { line?: number }).line;
    throw new ConfigError(`config.toml is not valid TOML${line ? ` (line ${line})` : ''}`);
  }
  const userHome = env['HOME'] || homedir();
  const out: Record<string, Record<string, unknown>> = {};
  for (const [section, value] of Object.entries(doc)) {
    if (!(section in SCHEMA)) throw new ConfigError(`unknown config section [${section}]`, section);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ConfigError(`config ${section} must be a [${section}] table`, section);
    }
    for (const key of Object.keys(value)) {
      if (!(key in (SCHEMA[section] ?? {}))) throw new ConfigError(`unknown config key ${section}.${key}`, `${section}.${key}`);
    }
  }
  for (const [section, keys] of Object.entries(SCHEMA)) {
    const given = (doc[section] ?? {}) as Record<string, unknown>;
    const sec: Record<string, unknown> = {};
    for (const [key, spec] of Object.entries(keys)) {
      const name = `${section}.${key}`;
      const raw = key in given ? given[key] : spec.def;
      if (raw === undefined) throw new ConfigError(`config key ${name} is required`, name);
      sec[key] = checkValue(name, spec.kind, raw, home, userHome);
    }
    out[section] = Object.freeze(sec);
  }
  if ((out['classifier']?.['max_size'] as number) > CLASSIFIER_MAX_SIZE) {
    throw new ConfigError('config key classifier.max_size must be at most "1M"', 'classifier.max_size');
  }
  // A delivery waits for the classifier without its deadline's timer (the program runs blocking).
  if ((out['classifier']?.['timeout'] as number) > CLASSIFIER_MAX_TIMEOUT) {
    throw new ConfigError('config key classifier.timeout must be at most "60s"', 'classifier.timeout');
  }
  // A session unused for longer than it may live at all would make the idle limit meaningless.
  if ((out['web']?.['session_idle'] as number) > (out['web']?.['session_lifetime'] as number)) {
    throw new ConfigError('config key web.session_idle must not be longer than web.session_lifetime', 'web.session_idle');
  }
  return Object.freeze(out) as unknown as Config;
}

function checkValue(name: string, kind: Kind, raw: unknown, home: string, userHome: string): unknown {
  const bad = (why: string) => new ConfigError(`config key ${name} ${why}`, name);
  switch (kind.type) {
    case 'string': {
      if (typeof raw !== 'string') throw bad('must be a string');
      const why = kind.check?.(raw);
      if (why) throw bad(why);
      return raw;
    }
    case 'path': {
      if (typeof raw !== 'string' || raw === '' || raw.includes('\0')) throw bad('must be a path');
      if (raw === '~' || raw.startsWith('~/')) return join(userHome, raw.slice(1));
      return isAbsolute(raw) ? raw : resolve(home, raw);
    }
    case 'enum':
      if (typeof raw !== 'string' || !kind.values.includes(raw)) throw bad(`must be one of ${kind.values.map((v) => `"${v}"`).join(', ')}`);
      return raw;
    case 'int': {
      const n = typeof raw === 'bigint' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isInteger(n) || n < kind.min || n > kind.max) {
        throw bad(`must be a whole number from ${kind.min} to ${kind.max}`);
      }
      return n;
    }
    case 'bool':
      if (typeof raw !== 'boolean') throw bad('must be true or false');
      return raw;
    case 'duration': {
      const ms = typeof raw === 'string' ? parseDuration(raw) : undefined;
      if (ms === undefined) throw bad('must be a duration like "90s", "30m", "24h" or "14d"');
      if (kind.max !== undefined && ms > kind.max.ms) throw bad(`must be at most "${kind.max.text}"`);
      return ms;
    }
    case 'size': {
      const n = typeof raw === 'string' ? parseSize(raw) : undefined;
      if (n === undefined) throw bad('must be a size like "512K" or "64M"');
      return n;
    }
    case 'strings': {
      if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string')) throw bad('must be a list of strings');
      for (const v of raw as string[]) {
        const why = kind.check?.(v);
        if (why) throw bad(why);
      }
      return Object.freeze([...raw]);
    }
    case 'choices':
      if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'string' && kind.values.includes(v))) {
        throw bad(`must be a list of ${kind.values.map((v) => `"${v}"`).join(', ')}`);
      }
      return Object.freeze([...new Set(raw as string[])]);
  }
}
