// Who may use the review page: the login secrets (the home's web token, an optional scrypt
// password), in-memory sessions, the Host check against DNS rebinding and the Origin check on
// every change. Pure helpers; the server wires them into fastify hooks.

import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

// ---- secrets

/** Compares two strings in time that depends only on their hashes' length (always 32 bytes). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b) && expected.length > 0;
}

interface ScryptParams {
  readonly ln: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

const HASH_RE = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d)\$([A-Za-z0-9+/]{16,}={0,2})\$([A-Za-z0-9+/]{43,}={0,2})$/;

/** Reads a password hash as written by hashPassword; undefined when it is not one. Bounds on the
 * cost keep a hand-edited config from making every login take minutes. */
export function parsePasswordHash(text: string): ScryptParams | undefined {
  const m = HASH_RE.exec(text.trim());
  if (!m) return undefined;
  const ln = Number(m[1]);
  const r = Number(m[2]);
  const p = Number(m[3]);
  if (ln < 10 || ln > 20 || r < 1 || r > 16 || p < 1 || p > 4) return undefined;
  const hash = Buffer.from(m[5] ?? '', 'base64');
  if (hash.length < 32) return undefined;
  return { ln, r, p, salt: Buffer.from(m[4] ?? '', 'base64'), hash };
}

function derive(password: string, salt: Buffer, ln: number, r: number, p: number, length: number): Promise<Buffer> {
  const N = 2 ** ln;
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** An scrypt hash for web.password_hash: `$scrypt$ln=15,r=8,p=1$<salt>$<hash>` (base64). */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, 15, 8, 1, 32);
  return `$scrypt$ln=15,r=8,p=1$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: ScryptParams): Promise<boolean> {
  const key = await derive(password, stored.salt, stored.ln, stored.r, stored.p, stored.hash.length);
  return timingSafeEqual(key, stored.hash);
}

// ---- sessions

export interface Notice {
  readonly kind: 'ok' | 'error';
  readonly text: string;
  /** The recorded action an Undo button on the notice reverses. */
  readonly undo?: number;
  /** Patterns just added by hand that held mail now matches: the notice offers to release it. */
  readonly offer?: { readonly patterns: readonly string[]; readonly n: number };
}

export interface Session {
  readonly id: string;
  expires: number;
  /** The end of the session whatever its use (the absolute lifetime). */
  readonly ends: number;
  /** A one-time message for the next page (the result of an action). */
  notice: Notice | undefined;
  /** What was typed into a form that was refused, to show it again. */
  draft: string | undefined;
}

/** Sessions live in memory: a restart logs everyone out, and the printed login URL logs in again. */
export class Sessions {
  readonly #byId = new Map<string, Session>();
  readonly #idleMs: number;
  readonly #lifeMs: number;
  readonly #now: () => number;

  constructor(opts: { readonly idleMs?: number; readonly lifeMs?: number; readonly now?: () => number } = {}) {
    this.#idleMs = opts.idleMs ?? 12 * 3_600_000;
    this.#lifeMs = opts.lifeMs ?? 7 * 86_400_000;
    this.#now = opts.now ?? Date.now;
  }

  create(): Session {
    this.#prune();
    const now = this.#now();
    const s: Session = { id: randomBytes(32).toString('base64url'), expires: now + this.#idleMs, ends: now + this.#lifeMs, notice: undefined, draft: undefined };
    this.#byId.set(s.id, s);
    return s;
  }

  /** The live session for a cookie value, its idle time renewed. */
  get(id: string | undefined): Session | undefined {
    if (id === undefined || id.length !== 43) return undefined;
    const s = this.#byId.get(id);
    if (!s) return undefined;
    if (s.expires <= this.#now() || s.ends <= this.#now()) {
      this.#byId.delete(id);
      return undefined;
    }
    s.expires = Math.min(s.ends, this.#now() + this.#idleMs);
    return s;
  }

  destroy(id: string): void {
    this.#byId.delete(id);
  }

  #prune(): void {
    const now = this.#now();
    for (const [id, s] of this.#byId) if (s.expires <= now || s.ends <= now) this.#byId.delete(id);
    // A flood of logins cannot grow memory without bound: the oldest sessions go first.
    while (this.#byId.size >= 1000) {
      const oldest = this.#byId.keys().next().value;
      if (oldest === undefined) break;
      this.#byId.delete(oldest);
    }
  }
}

/** Slows password guessing: at most `max` failed logins in any `windowMs` (a sliding window, so
 * guesses around a minute's boundary count together), then refusals until the oldest ages out. */
export class LoginThrottle {
  /** When each failure counted now happened, oldest first; never more than `max`. */
  readonly #failures: number[] = [];
  readonly #max: number;
  readonly #now: () => number;
  readonly #windowMs: number;

  constructor(max = 10, now: () => number = Date.now, windowMs = 60_000) {
    this.#max = max;
    this.#now = now;
    this.#windowMs = windowMs;
  }

  blocked(): boolean {
    this.#age(this.#now());
    return this.#failures.length >= this.#max;
  }

  fail(): void {
    const now = this.#now();
    this.#age(now);
    this.#failures.push(now);
    if (this.#failures.length > this.#max) this.#failures.shift();
  }

  #age(now: number): void {
    while (this.#failures.length > 0 && (this.#failures[0] as number) <= now - this.#windowMs) this.#failures.shift();
  }
}

// ---- Host and Origin

export interface Listen {
  readonly host: string;
  readonly port: number;
}

/** Splits `HOST:PORT` (`[v6]:PORT` for IPv6). */
export function parseListen(text: string): Listen | undefined {
  const m = /^(\[[0-9a-fA-F:.]+\]|[0-9a-zA-Z.-]+):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port > 65535) return undefined;
  const host = (m[1] ?? '').replace(/^\[|\]$/g, '');
  return { host, port };
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The Host header values the page answers to: the listen address itself, and the loopback names
 * (on any port, so an SSH tunnel may use another local port). A rebinding attack needs a name the
 * attacker controls, so anything else is refused. */
export function hostAllowed(header: string | undefined, listen: Listen): boolean {
  if (header === undefined) return false;
  const m = /^(\[[0-9a-fA-F:.]+\]|[0-9a-zA-Z.-]+)(?::(\d{1,5}))?$/.exec(header.trim().toLowerCase());
  if (!m) return false;
  const name = (m[1] ?? '').replace(/\.$/, '');
  const port = m[2] === undefined ? 80 : Number(m[2]);
  if (LOOPBACK.has(name)) return true;
  const own = listen.host.includes(':') ? `[${listen.host.toLowerCase()}]` : listen.host.toLowerCase();
  return name === own && port === listen.port;
}

/** Whether a state-changing request comes from the page itself. With Referrer-Policy no-referrer a
 * browser sends `Origin: null` on a form POST, so the Fetch Metadata header decides then; a
 * foreign Origin or a cross-site fetch is always refused, and so is a request carrying neither. */
export function sameOrigin(origin: string | undefined, fetchSite: string | undefined, host: string | undefined): boolean {
  if (host === undefined) return false;
  const own = `http://${host.toLowerCase()}`;
  const o = origin?.toLowerCase();
  if (o !== undefined && o !== 'null' && o !== own) return false;
  if (fetchSite !== undefined && fetchSite !== 'same-origin') return false;
  return o === own || fetchSite === 'same-origin';
}
