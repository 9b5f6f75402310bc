// The Postfix sandbox of the end-to-end test: installs Debian's postfix and swaks when missing, swaps in
// a local-only main.cf, makes the users alice (who runs vouch) and bob, and undoes all of it afterwards.
// Every step is recorded in a state file first, so that a run killed half-way is undone all the same
// (by a watcher process, or by the next run).

import { spawn, spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ROOT, setConfig } from '../helpers.js';

export const DOMAIN = 'vouch-e2e.test';
/** The virtual domain whose users `vouch serve` serves over LMTP. */
export const VDOMAIN = `virt.${DOMAIN}`;
/** Fixed, so that a later run finds what a killed run left behind. */
export const STATE_DIR = '/var/tmp/vouch-e2e';
export const MAILLOG = join(STATE_DIR, 'maillog');
const STATE = join(STATE_DIR, 'state.json');
const BACKUP = join(STATE_DIR, 'backup');
const PKG = join(STATE_DIR, 'pkg');
const CONF = '/etc/postfix';
const SAVED = ['main.cf', 'master.cf'] as const;
/** The GECOS field of the users this test makes: the only users it ever removes. */
const MARK = 'vouch e2e test user';
const PATH = '/usr/sbin:/usr/bin:/sbin:/bin';
/** The LMTP socket Postfix's virtual_transport names; its folder belongs to the vmail user. */
export const LMTP_DIR = join(STATE_DIR, 'lmtp');
export const LMTP_SOCKET = join(LMTP_DIR, 'vouch.sock');
/** The virtual users (on VDOMAIN), served by one `vouch serve` running as vmail. */
export const VIRTUAL = ['carol', 'dave'] as const;

/** The settings that matter, and nothing that could send mail off this machine. */
export const MAIN_CF = `# Written by vouch's end-to-end test (test/e2e/postfix.ts); the original is put back when it ends.
compatibility_level = 3.6
myhostname = mx.${DOMAIN}
mydomain = ${DOMAIN}
myorigin = $mydomain
mydestination = $mydomain, $myhostname, localhost
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost =
default_transport = error
relay_transport = error
recipient_delimiter = +
home_mailbox = Maildir/
alias_maps =
alias_database =
delay_warning_time = 0h
biff = no
append_dot_mydomain = no
maillog_file = ${MAILLOG}
virtual_mailbox_domains = ${VDOMAIN}
virtual_mailbox_maps = inline:{ ${VIRTUAL.map((u) => `${u}@${VDOMAIN}=${u}`).join(', ')} }
virtual_transport = lmtp:unix:${LMTP_SOCKET}
`;

interface State {
  /** The test process; a guardian undoes everything when it dies without doing so itself. */
  owner: number;
  postfixWasRunning: boolean;
  /** For each file of SAVED: did it exist before (a copy is in BACKUP)? */
  saved: Record<string, boolean>;
  users: string[];
  /** The `vouch serve` this run started, if any (stopped by tearDown). */
  servePid?: number;
}

export interface User {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
  readonly address: string;
}

export interface QueueEntry {
  readonly queue_name: string;
  readonly queue_id: string;
  readonly sender: string;
  readonly recipients: readonly { readonly address: string; readonly delay_reason?: string }[];
}

/** One delivery attempt as Postfix logged it. */
export interface Delivery {
  readonly agent: string;
  readonly id: string;
  readonly to: string;
  readonly status: string;
  readonly text: string;
}

export interface Events {
  readonly log: string;
  readonly deliveries: readonly Delivery[];
  /** Bounce and delay notices Postfix generated (there must never be any). */
  readonly notices: readonly string[];
}

function run(cmd: string, args: readonly string[], opts: SpawnSyncOptions = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, PATH }, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.signal ?? r.status}): ${String(r.stderr).trim()} ${String(r.stdout).trim()}`.slice(0, 2000));
  return String(r.stdout);
}

function succeeds(cmd: string, args: readonly string[]): boolean {
  const r = spawnSync(cmd, args, { stdio: 'ignore', env: { ...process.env, PATH } });
  return r.status === 0;
}

const onPath = (cmd: string) => succeeds('sh', ['-c', `command -v ${cmd}`]);

/** Polls `probe` every 50 ms until it gives a value; fails after `ms` saying what it waited for. */
export async function until<T>(what: string, probe: () => T | undefined, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function readState(): State | undefined {
  try {
    return JSON.parse(readFileSync(STATE, 'utf8')) as State;
  } catch {
    return undefined;
  }
}

function writeState(s: State): void {
  writeFileSync(STATE, `${JSON.stringify(s)}\n`);
}

function userInfo(name: string): { uid: number; gid: number; home: string; gecos: string } | undefined {
  const r = spawnSync('getent', ['passwd', name], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const f = r.stdout.trim().split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), gecos: f[4] ?? '', home: f[5] ?? '' };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function postfixGid(): number {
  const r = spawnSync('getent', ['group', 'postfix'], { encoding: 'utf8' });
  const gid = Number(r.stdout.split(':')[2]);
  if (r.status !== 0 || !Number.isInteger(gid)) throw new Error('no postfix group');
  return gid;
}

function postfixRunning(): boolean {
  return succeeds('postfix', ['status']);
}

/** One main.cf value as Postfix sees it. */
export function postconf(name: string): string {
  return run('postconf', ['-h', name]).trim();
}

/** Debian's postfix and swaks, installed without questions when missing. */
export function ensurePackages(): void {
  const missing: string[] = [];
  if (!existsSync('/usr/sbin/postfix')) missing.push('postfix');
  if (!onPath('swaks')) missing.push('swaks');
  if (missing.length === 0) return;
  const env = { ...process.env, PATH, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  let r = install();
  if (r.status !== 0) {
    run('apt-get', ['update', '-q'], { env });
    r = install();
  }
  if (r.status !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed: ${r.stderr}`);
}

/** Undoes whatever the state file says was done, in reverse order; every step is tried. Safe to
 * call at any time. When a step fails, the saved files stay in STATE_DIR and the error names it. */
export function tearDown(opts: { keep?: boolean } = {}): void {
  const s = readState();
  if (s === undefined) return;
  const problems: string[] = [];
  const step = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (err) {
      problems.push(`${what}: ${(err as Error).message}`);
    }
  };
  if (s.servePid !== undefined && alive(s.servePid)) step('stopping vouch serve', () => process.kill(s.servePid as number, 'SIGKILL'));
  if (postfixRunning()) {
    step('removing the test mail from the queue', deleteOwnMail);
    step('stopping Postfix', () => run('postfix', ['stop']));
  }
  for (const name of SAVED) {
    if (!(name in s.saved)) continue;
    step(`restoring ${CONF}/${name}`, () => {
      const target = join(CONF, name);
      if (s.saved[name]) copyFileSync(join(BACKUP, name), target);
      else rmSync(target, { force: true });
    });
  }
  for (const name of s.users) {
    step(`removing the user ${name}`, () => {
      if (userInfo(name)?.gecos !== MARK) return;
      spawnSync('userdel', ['--remove', name], { stdio: 'ignore' });
      if (userInfo(name) !== undefined) run('userdel', ['--remove', '--force', name]);
    });
  }
  if (s.postfixWasRunning) step('restarting Postfix', () => run('postfix', ['start']));
  if (problems.length > 0) throw new Error(`the e2e sandbox could not be undone completely (saved files are in ${STATE_DIR}): ${problems.join('; ')}`);
  if (opts.keep) rmSync(STATE);
  else rmSync(STATE_DIR, { recursive: true, force: true });
}

/** Removes from the queue only what this test sent: mail from or to the test domain. */
function deleteOwnMail(): void {
  const ours = (a: string) => a.endsWith(`@${DOMAIN}`) || a.endsWith(`@${VDOMAIN}`);
  const ids = queue()
    .filter((e) => ours(e.sender) || e.recipients.some((r) => ours(r.address)))
    .map((e) => e.queue_id);
  if (ids.length > 0) run('postsuper', ['-d', '-'], { input: `${ids.join('\n')}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** The Postfix queue as `postqueue -j` shows it (maildrop, incoming, active, deferred, hold). */
export function queue(): QueueEntry[] {
  return run('postqueue', ['-j'])
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as QueueEntry);
}

function makeUser(s: State, name: string): User {
  const found = userInfo(name);
  if (found && found.gecos !== MARK) throw new Error(`a user ${name} already exists; the e2e test makes its own and will not touch it`);
  if (found) run('userdel', ['--remove', name]);
  s.users.push(name);
  writeState(s);
  run('useradd', ['--create-home', '--comment', MARK, '--shell', '/bin/sh', name]);
  const u = userInfo(name);
  if (!u) throw new Error(`useradd ${name} made no user`);
  return { name, uid: u.uid, gid: u.gid, home: u.home, address: `${name}@${DOMAIN}` };
}

/** Spawn options that run a program as `user`, in their home, with a clean environment. */
export function asUser(user: User, extra: SpawnSyncOptions = {}): SpawnSyncOptions {
  return {
    uid: user.uid,
    gid: user.gid,
    cwd: user.home,
    env: { HOME: user.home, USER: user.name, LOGNAME: user.name, PATH: '/usr/bin:/bin' },
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    ...extra,
  };
}

/** A copy of the built package that any user can read, wherever the checkout is (/root in CI).
 * node_modules is hard-linked where it can be (9000 files: a real copy takes seconds); only the
 * copy's folders are new, and the files of a checkout are world-readable already. */
function copyPackage(): void {
  mkdirSync(PKG, { mode: 0o755 });
  const parts = ['package.json', 'config.example.toml', 'templates', 'dist'].filter((p) => existsSync(join(ROOT, p)));
  run('cp', ['-a', ...parts.map((p) => join(ROOT, p)), PKG]);
  const modules = join(ROOT, 'node_modules');
  if (!succeeds('cp', ['-al', modules, PKG])) {
    rmSync(join(PKG, 'node_modules'), { recursive: true, force: true });
    run('cp', ['-a', modules, PKG]);
  }
  run('chmod', ['-R', 'a+rX', PKG]);
}

/** The node binary `user` can run: this one, or a world-readable copy when it sits somewhere private. */
function nodeFor(user: User): string {
  const node = realpathSync(process.execPath);
  if (spawnSync(node, ['-e', ''], asUser(user)).status === 0) return node;
  mkdirSync(join(PKG, 'bin'), { mode: 0o755 });
  const copy = join(PKG, 'bin', 'node');
  copyFileSync(node, copy);
  chmodSync(copy, 0o755);
  return copy;
}

function waitForSmtp(ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + ms;
    const attempt = () => {
      const sock = connect(25, '127.0.0.1');
      let got = '';
      const retry = (why: string) => {
        sock.destroy();
        if (Date.now() > end) reject(new Error(`Postfix did not answer on 127.0.0.1:25 (${why})`));
        else setTimeout(attempt, 100);
      };
      sock.setTimeout(2000, () => retry('timeout'));
      sock.on('error', (e) => retry(e.message));
      sock.on('data', (d) => {
        got += d.toString('latin1');
        if (!got.includes('\n')) return;
        sock.end('QUIT\r\n');
        if (got.startsWith('220 ') && got.includes('Postfix')) resolve();
        else reject(new Error(`something else answers on 127.0.0.1:25: ${got.trim().slice(0, 100)}`));
      });
    };
    attempt();
  });
}

/** A user of the virtual domain: the folder that holds the vouch home and the Maildir. */
export interface VirtualUser {
  readonly name: string;
  readonly address: string;
  readonly folder: string;
  readonly home: string;
  readonly maildir: string;
}

export class Sandbox {
  readonly alice: User;
  readonly bob: User;
  /** The service user `vouch serve` runs as, and the virtual users whose homes it holds. */
  readonly vmail: User;
  readonly virtual: readonly VirtualUser[];
  #serve: ReturnType<typeof spawn> | undefined;
  /** The node and cli.js alice runs vouch with (the ones in her .forward). */
  readonly node: string;
  readonly cli: string;
  /** The exact line `vouch init` printed for ~/.forward. */
  readonly forwardLine: string;
  readonly queueDir: string;

  private constructor(alice: User, bob: User, vmail: User, virtual: readonly VirtualUser[], node: string, forwardLine: string) {
    this.alice = alice;
    this.bob = bob;
    this.vmail = vmail;
    this.virtual = virtual;
    this.node = node;
    this.cli = join(PKG, 'dist', 'agent', 'cli.js');
    this.forwardLine = forwardLine;
    this.queueDir = postconf('queue_directory');
  }

  static async setUp(): Promise<Sandbox> {
    if (process.getuid?.() !== 0) throw new Error('the e2e test runs Postfix and makes users: run it as root');
    const old = readState();
    if (old && old.owner !== process.pid && alive(old.owner)) throw new Error(`another e2e run (pid ${old.owner}) is using Postfix`);
    tearDown();
    // What is left without a state file (VOUCH_E2E_KEEP=1) holds nothing to put back.
    rmSync(STATE_DIR, { recursive: true, force: true });
    ensurePackages();
    mkdirSync(STATE_DIR, { recursive: true, mode: 0o755 });
    chmodSync(STATE_DIR, 0o755);
    const s: State = { owner: process.pid, postfixWasRunning: postfixRunning(), saved: {}, users: [] };
    writeState(s);
    guard(process.pid);
    if (s.postfixWasRunning) run('postfix', ['stop']);

    mkdirSync(BACKUP, { mode: 0o700 });
    for (const name of SAVED) {
      const path = join(CONF, name);
      if (existsSync(path)) copyFileSync(path, join(BACKUP, name));
      s.saved[name] = existsSync(path);
      writeState(s);
    }
    if (!s.saved['master.cf']) copyFileSync(join(CONF, 'master.cf.proto'), join(CONF, 'master.cf'));
    writeFileSync(join(CONF, 'main.cf'), MAIN_CF);
    // No chroot: Debian's chrooted services would need copies of /etc files in the queue directory.
    run('postconf', ['-F', '*/*/chroot = n']);
    // maillog_file needs the postlogd service (in Debian's master.cf, but not in every older one).
    run('postconf', ['-M', 'postlog/unix-dgram=postlog unix-dgram n - n - 1 postlogd']);

    const alice = makeUser(s, 'alice');
    const bob = makeUser(s, 'bob');
    const vmail = makeUser(s, 'vmail');
    copyPackage();
    const node = nodeFor(alice);
    const cli = join(PKG, 'dist', 'agent', 'cli.js');

    const init = spawnSync(node, [cli, 'init', '--address', alice.address], asUser(alice));
    if (init.status !== 0) throw new Error(`vouch init failed: ${String(init.stderr)}${String(init.stdout)}`);
    const lines = String(init.stdout).split('\n');
    const at = lines.findIndex((l) => l.includes('~/.forward'));
    const forwardLine = lines[at + 1]?.trim() ?? '';
    if (at < 0 || !/^"\|\S+ \S+ deliver --mta postfix"$/.test(forwardLine)) throw new Error(`vouch init printed no .forward line: ${String(init.stdout)}`);
    const forward = join(alice.home, '.forward');
    writeFileSync(forward, `${forwardLine}\n`, { mode: 0o644 });
    chownSync(forward, alice.uid, alice.gid);
    // The sandbox has no DNS: authentication (test/auth.test.ts has its own DNS server) is off here.
    setConfig(join(alice.home, '.vouch'), { identity: { delimiter: '+' }, send: { transport: 'sendmail', sendmail: '/usr/sbin/sendmail' }, challenge: { require: 'none' } });

    // The virtual users: a home each under vmail's, made by `vouch init --home` run as vmail (with
    // HOME the user's folder, which `vouch serve` takes for `~` in their config too).
    mkdirSync(LMTP_DIR, { mode: 0o750 });
    chownSync(LMTP_DIR, vmail.uid, postfixGid());
    const virtual = VIRTUAL.map((name): VirtualUser => {
      const folder = join(vmail.home, VDOMAIN, name);
      const home = join(folder, '.vouch');
      const opts = asUser(vmail);
      const r = spawnSync(node, [cli, 'init', '--home', home, '--address', `${name}@${VDOMAIN}`], { ...opts, env: { ...(opts.env as NodeJS.ProcessEnv), HOME: folder } });
      if (r.status !== 0) throw new Error(`vouch init --home for ${name} failed: ${String(r.stderr)}${String(r.stdout)}`);
      setConfig(home, { identity: { delimiter: '+' }, send: { transport: 'sendmail', sendmail: '/usr/sbin/sendmail' }, challenge: { require: 'none' } });
      return { name, address: `${name}@${VDOMAIN}`, folder, home, maildir: join(folder, 'Maildir') };
    });

    run('postfix', ['check']);
    run('postfix', ['start']);
    await waitForSmtp(20_000);
    return new Sandbox(alice, bob, vmail, virtual, node, forwardLine);
  }

  /** Starts `vouch serve` as vmail (group postfix, so that Postfix's lmtp client may use the 0660
   * socket) for VDOMAIN's homes; resolves once it listens. */
  async startServe(): Promise<void> {
    const opts = asUser(this.vmail);
    const child = spawn(this.node, [this.cli, 'serve', '--listen', `unix:${LMTP_SOCKET}`, '--homes', join(this.vmail.home, '%d', '%u', '.vouch')], {
      uid: this.vmail.uid,
      gid: postfixGid(),
      cwd: this.vmail.home,
      env: opts.env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#serve = child;
    const s = readState();
    if (s) writeState({ ...s, servePid: child.pid ?? 0 });
    let out = '';
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
    await until('vouch serve to listen', () => (/serving LMTP/.test(out) ? true : child.exitCode !== null ? (() => { throw new Error(`vouch serve exited: ${out}`); })() : undefined), 20_000);
  }

  /** Stops `vouch serve` with SIGTERM (it finishes what it is delivering) and waits for its exit. */
  async stopServe(): Promise<number | null> {
    const child = this.#serve;
    this.#serve = undefined;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    return exited;
  }

  /** Runs the vouch CLI for a virtual user (as vmail, with that user's home). */
  vouchFor(user: VirtualUser, args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
    const opts = asUser(this.vmail);
    const r = spawnSync(this.node, [this.cli, '--home', user.home, ...args], { ...opts, env: { ...(opts.env as NodeJS.ProcessEnv), HOME: user.folder } });
    return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  pendingFor(user: VirtualUser): { id: string; sender: string; subject: string; challenge: string; challenge_note: string }[] {
    const r = this.vouchFor(user, ['pending', 'list', '--json']);
    if (r.code !== 0) throw new Error(`vouch pending list failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as { id: string; sender: string; subject: string; challenge: string; challenge_note: string }[];
  }

  /** Runs the vouch CLI as alice. */
  vouch(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
    const r = spawnSync(this.node, [this.cli, ...args], asUser(this.alice));
    return { code: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
  }

  pending(): { id: string; sender: string; subject: string; challenge: string; challenge_note: string }[] {
    const r = this.vouch(['pending', 'list', '--json']);
    if (r.code !== 0) throw new Error(`vouch pending list failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as { id: string; sender: string; subject: string; challenge: string; challenge_note: string }[];
  }

  /** Sends `message` over SMTP to 127.0.0.1 with swaks; returns Postfix's queue ID. swaks ends the
   * data with CRLF.CRLF itself, so the message's own last line end is left to it: what Postfix
   * queues is then exactly `message`. */
  swaks(from: string, to: string, message: Buffer): string {
    const data = message.at(-1) === 0x0a ? message.subarray(0, -1) : message;
    const r = spawnSync('swaks', ['--server', '127.0.0.1', '--port', '25', '--helo', `client.${DOMAIN}`, '--from', from === '' ? '<>' : from, '--to', to, '--data', '-'], {
      input: data,
      encoding: 'utf8',
      env: { ...process.env, PATH },
    });
    const id = /<-\s+250 [\d.]+ Ok: queued as ([0-9A-F]+)/.exec(String(r.stdout))?.[1];
    if (r.status !== 0 || id === undefined) throw new Error(`swaks failed (${r.status}): ${String(r.stdout).slice(-800)}${String(r.stderr)}`);
    return id;
  }

  /** Sends as `user` through Postfix's sendmail, the way a mail program on this machine would. */
  sendmail(user: User, to: string, message: Buffer): void {
    const r = spawnSync('/usr/sbin/sendmail', ['-i', '-f', user.address, '--', to], asUser(user, { input: message }));
    if (r.status !== 0) throw new Error(`sendmail failed (${r.status}): ${String(r.stderr)}`);
  }

  /** `postqueue -f`: try the deferred mail again now. */
  flush(): void {
    run('postqueue', ['-f']);
  }

  /** Where the log stands now: pass it to settle() or events(). */
  mark(): number {
    try {
      return statSync(MAILLOG).size;
    } catch {
      return 0;
    }
  }

  logSince(mark: number): string {
    try {
      return readFileSync(MAILLOG).subarray(mark).toString('utf8');
    } catch {
      return '';
    }
  }

  events(mark: number): Events {
    const log = this.logSince(mark);
    const deliveries: Delivery[] = [];
    for (const m of log.matchAll(/postfix\/(\w+)\[\d+\]: ([0-9A-F]+): to=<([^>]*)>,.*? status=(\w+) \((.*)\)$/gm)) {
      deliveries.push({ agent: m[1] ?? '', id: m[2] ?? '', to: m[3] ?? '', status: m[4] ?? '', text: m[5] ?? '' });
    }
    const notices = [...log.matchAll(/^.*(?:sender (?:non-delivery|delay|delivery status) notification|postmaster non-delivery).*$/gm)].map((m) => m[0]);
    return { log, deliveries, notices };
  }

  /** Waits until Postfix has nothing left to do: maildrop and queue empty, and every queue ID
   * logged since `mark` (and each of `ids`) logged as removed. Returns what happened meanwhile. */
  settle(mark: number, ids: readonly string[] = [], ms = 30_000): Promise<Events> {
    const maildrop = join(this.queueDir, 'maildrop');
    return until(
      'the Postfix queue to empty',
      () => {
        // maildrop first: a message moves from maildrop into the queue before it leaves maildrop.
        if (readdirSync(maildrop).length > 0) return undefined;
        if (queue().length > 0) return undefined;
        const log = this.logSince(mark);
        const seen = new Set([...ids, ...[...log.matchAll(/postfix\/\w+\[\d+\]: ([0-9A-F]{6,}): /g)].map((m) => m[1] ?? '')]);
        for (const id of seen) if (!log.includes(`: ${id}: removed`)) return undefined;
        return this.events(mark);
      },
      ms,
    );
  }
}

/** Starts a detached watcher that undoes the sandbox if `pid` dies without doing so (ava kills a
 * worker that times out, and no hook or exit handler runs then). It leaves once the state is gone. */
function guard(pid: number): void {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'guard', String(pid)], { detached: true, stdio: 'ignore' });
  child.unref();
}

function watch(pid: number): void {
  const timer = setInterval(() => {
    const s = readState();
    if (s === undefined || s.owner !== pid) {
      clearInterval(timer);
      return;
    }
    if (alive(pid)) return;
    clearInterval(timer);
    try {
      tearDown();
    } catch {
      /* the next run (or `teardown` by hand) tries again: the state file is still there */
    }
  }, 250);
}

// `node dist/test/e2e/postfix.js teardown` undoes what a run left behind, by hand; `guard PID` is the watcher.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href) {
  if (process.argv[2] === 'teardown') tearDown();
  else if (process.argv[2] === 'guard') watch(Number(process.argv[3]));
}

