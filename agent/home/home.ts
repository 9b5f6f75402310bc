// The vouch home: where config.toml, secret, web-token and vouch.db live, and `vouch init`.

import { randomBytes } from 'node:crypto';
import { accessSync, chmodSync, closeSync, constants, existsSync, fchmodSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, hostname, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPlainAddress } from '../mail/address.js';
import { UsageError } from '../failure/failure.js';

export interface HomePaths {
  readonly dir: string;
  readonly config: string;
  readonly secret: string;
  readonly webToken: string;
  readonly db: string;
}

/** The folder in the home where whitelisted deliveries leave ham samples for `vouch learn`
 * (classifier.learn_whitelisted): plain files, so the whitelisted path never opens the store. */
export const HAM_SAMPLES = 'learn.queue';

/** The home folder: --home, else VOUCH_HOME, else ~/.vouch. */
export function homeDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const dir = flag ?? env['VOUCH_HOME'] ?? join(env['HOME'] || homedir(), '.vouch');
  return resolve(dir);
}

export function homePaths(dir: string): HomePaths {
  return Object.freeze({
    dir,
    config: join(dir, 'config.toml'),
    secret: join(dir, 'secret'),
    webToken: join(dir, 'web-token'),
    db: join(dir, 'vouch.db'),
  });
}

/** The package root (where config.example.toml and templates/ are), from dist/agent/home/ (or,
 * inside a bundle, dist/agent/cli/: both stand two folders below dist/). */
let root: string | undefined;

export function packageRoot(): string {
  root ??= resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
  return root;
}

/** Reads the 32-byte HMAC key. */
export function readSecret(paths: HomePaths): Buffer {
  const key = readFileSync(paths.secret);
  if (key.length < 32) throw new Error('the secret is too short');
  return key;
}

export function readWebToken(paths: HomePaths): string {
  return readFileSync(paths.webToken, 'utf8').trim();
}

export interface InitResult {
  readonly created: readonly string[];
  readonly address: string;
  /** The bogofilter program a new config.toml names (classifier enabled), or undefined when none
   * was found (classifier disabled); undefined too when config.toml was already there. */
  readonly classifier?: string | undefined;
}

/** The first bogofilter program on PATH. */
export function findBogofilter(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const dirs = (env['PATH'] ?? '').split(':').filter((d) => d.startsWith('/'));
  for (const d of dirs) {
    const p = join(d, 'bogofilter');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

/** The [classifier] lines of a new config.toml: enabled with the program found, else disabled. */
function classifierLines(text: string, program: string | undefined): string {
  const section = /^\[classifier\]$[\s\S]*?(?=^\[|(?![\s\S]))/m;
  return text.replace(section, (sec) =>
    program === undefined
      ? sec.replace(/^enabled = true$/m, 'enabled = false')
      : sec.replace(/^command = ".*"$/m, `command = ${JSON.stringify(program)}`),
  );
}

/** The mode of the home and of every folder in it, and of every file in it, whatever the umask. */
export const PRIVATE_DIR = 0o700;
export const PRIVATE_FILE = 0o600;

/** Makes `path` exist as an empty file of mode 0600 if it is missing, and 0600 if it is there.
 * For the store: SQLite creates its file 0644 less the umask, and its -wal and -shm take the mode
 * of the store's file, so a store made 0600 first keeps all three private. */
export function privateFile(path: string): void {
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, PRIVATE_FILE);
  try {
    fchmodSync(fd, PRIVATE_FILE);
  } finally {
    closeSync(fd);
  }
}

/** Creates what is missing in the home; never replaces an existing secret, token, config or store
 * (the store itself is made by `vouch init` alone, through Store.open with `create`, in the file
 * made here 0600). The
 * home is made 0700 even when it was there before (a folder named by --home), and so are the
 * secret, the token and the store's file 0600, whatever the umask. */
export function initHome(paths: HomePaths, address: string | undefined, env: NodeJS.ProcessEnv = process.env): InitResult {
  const created: string[] = [];
  mkdirSync(paths.dir, { recursive: true, mode: PRIVATE_DIR });
  chmodSync(paths.dir, PRIVATE_DIR);
  let addr = address;
  let classifier: string | undefined;
  if (addr !== undefined && !isPlainAddress(addr)) throw new UsageError(`--address must be a plain address like alice@example.org`);
  if (!existsSync(paths.config)) {
    addr ??= defaultAddress(env);
    const example = readFileSync(join(packageRoot(), 'config.example.toml'), 'utf8');
    classifier = findBogofilter(env);
    const text = classifierLines(example.replace(/^address = ".*"$/m, `address = "${addr}"`), classifier);
    writeFileSync(paths.config, text, { mode: 0o600, flag: 'wx' });
    created.push('config.toml');
  } else if (addr !== undefined) {
    const text = readFileSync(paths.config, 'utf8');
    const current = /^address = "(.*)"$/m.exec(text)?.[1];
    if (current !== addr) throw new UsageError(`config.toml already exists with address ${current ?? '(none)'}; edit it by hand`);
  }
  if (!existsSync(paths.secret)) {
    writeFileSync(paths.secret, randomBytes(32), { mode: 0o600, flag: 'wx' });
    created.push('secret');
  }
  chmodSync(paths.secret, 0o600);
  if (!existsSync(paths.webToken)) {
    writeFileSync(paths.webToken, `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    created.push('web-token');
  }
  chmodSync(paths.webToken, 0o600);
  chmodSync(paths.config, PRIVATE_FILE);
  privateFile(paths.db);
  const final = /^address = "(.*)"$/m.exec(readFileSync(paths.config, 'utf8'))?.[1] ?? addr ?? '';
  return { created, address: final, classifier };
}

function defaultAddress(env: NodeJS.ProcessEnv): string {
  const user = (env['USER'] || env['LOGNAME'] || userInfo().username || 'user').toLowerCase().replace(/[^a-z0-9._-]/g, '');
  const host = hostname().toLowerCase().replace(/[^a-z0-9.-]/g, '') || 'localhost';
  const addr = `${user || 'user'}@${host}`;
  return isPlainAddress(addr) ? addr : 'user@localhost';
}
