// Every `vouch` command but the delivery fast path: argument parsing with commander, then the
// module that does the work. Errors become one line on stderr and a non-zero exit.

import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { createReadStream } from 'node:fs';
import { entriesNamed, parsePattern, type Pattern } from '../mail/address.js';
import { loadConfig, type Config } from '../home/config.js';
import { parseDuration } from '../home/duration.js';
import { detectMta } from '../deliver/envelope.js';
import { ConfigError, exitCode, UsageError, type Mta } from '../failure/failure.js';
import { homeDir, homePaths, initHome, packageRoot, readSecret, type HomePaths } from '../home/home.js';
import { isId } from '../store/ids.js';
import { describeSignal } from '../policy/classify.js';
import type { ListName, Store } from '../store/store.js';

interface Globals {
  home?: string;
}

function paths(cmd: Command): HomePaths {
  return homePaths(homeDir((cmd.optsWithGlobals() as Globals).home));
}

async function withStore<T>(cmd: Command, fn: (store: Store, config: Config, p: HomePaths) => Promise<T>): Promise<T> {
  const p = paths(cmd);
  const config = loadConfig(p.dir);
  const { Store, StoreMissingError } = await import('../store/store.js');
  let store: Store;
  try {
    store = await Store.open(p.db, { busyMs: 10_000 });
  } catch (err) {
    if (err instanceof StoreMissingError) throw new Error(`${err.message} (${p.db})`);
    throw new Error(`cannot open the pending store: ${(err as Error).message}`);
  }
  try {
    return await fn(store, config, p);
  } finally {
    await store.close();
  }
}

/** A held message's classifier verdict and score for --json, or null when it was not classified. */
function classifierOf(m: { readonly signals: Readonly<Record<string, unknown>> }): { verdict: string; score: number | null } | null {
  const c = describeSignal(m.signals);
  return c === undefined ? null : { verdict: c.verdict, score: c.score ?? null };
}

function ids(list: readonly string[]): string[] {
  for (const id of list) if (!isId(id)) throw new UsageError(`"${id.slice(0, 40)}" is not a message id`);
  return [...list];
}

function fmtTime(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

function fmtSize(n: number): string {
  return n < 1024 ? `${n}B` : n < 1024 ** 2 ? `${(n / 1024).toFixed(1)}K` : `${(n / 1024 ** 2).toFixed(1)}M`;
}

function listCommands(program: Command, list: ListName): void {
  const name = list === 'white' ? 'whitelist' : 'blacklist';
  const cmd = program.command(name).description(`manage the ${name} (exact address, @domain, *@*.domain, prefix-@domain)`);
  cmd
    .command('add')
    .description(`add patterns to the ${name}`)
    .argument('<pattern...>')
    .action(async (patterns: string[], _o, c: Command) => {
      const parsed = patterns.map(parsePattern);
      await withStore(c, async (store) => {
        const n = await store.addPatterns(list, parsed);
        console.log(`${n} added to the ${name}${n < parsed.length ? ` (${parsed.length - n} already there)` : ''}`);
      });
    });
  cmd
    .command('remove')
    .description(`remove patterns from the ${name}`)
    .argument('<pattern...>')
    .action(async (patterns: string[], _o, c: Command) => {
      const parsed = patterns.flatMap((p) => entriesNamed(p));
      await withStore(c, async (store) => {
        const n = await store.removePatterns(list, parsed);
        console.log(`${n} removed from the ${name}`);
      });
    });
  cmd
    .command('list')
    .description(`print the ${name}, one pattern a line`)
    .action(async (_o, c: Command) => {
      await withStore(c, async (store) => {
        const rows = await store.listPatterns(list);
        process.stdout.write(rows.map((r) => `${r.pattern}\n`).join(''));
      });
    });
  if (list === 'white') {
    cmd
      .command('learn')
      .description('whitelist the recipients of your sent mail (Maildirs, mbox files, folders of messages)')
      .argument('<path...>')
      .option('--dry-run', 'print what would be whitelisted, change nothing')
      .option('--all', 'print every address with its count (default: the 20 most written to)')
      .action(async (files: string[], o: { dryRun?: boolean; all?: boolean }, c: Command) => {
        await withStore(c, async (store, config) => {
          const { readSentMail, progressBar } = await import('../send/learn.js');
          const { exactPattern } = await import('../mail/address.js');
          const bar = process.stderr.isTTY ? progressBar((text) => process.stderr.write(text)) : undefined;
          let sent;
          try {
            sent = await readSentMail(files, config, bar?.progress);
          } catch (err) {
            throw new UsageError((err as Error).message);
          } finally {
            bar?.end();
          }
          const ranked = [...sent.counts.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
          // A recipient the user blacklisted stays blacklisted: learning never lifts a blacklist.
          const keep: [string, number][] = [];
          let blacklisted = 0;
          for (const entry of ranked) {
            if ((await store.lookup(entry[0]))?.list === 'black') blacklisted += 1;
            else keep.push(entry);
          }
          const added = o.dryRun ? 0 : await store.addPatterns('white', keep.map(([k]) => exactPattern(k)), Date.now(), { source: 'send', note: 'whitelist learn' });
          const shown = o.all ? keep : keep.slice(0, 20);
          for (const [k, n] of shown) console.log(`${String(n).padStart(6)}  ${k}`);
          if (shown.length < keep.length) console.log(`   …    and ${keep.length - shown.length} more (--all shows every one)`);
          const what = o.dryRun ? 'would be whitelisted (dry run: nothing changed)' : `whitelisted: ${added} new, ${keep.length - added} already there`;
          console.log(
            `${sent.messages} message(s) read; ${keep.length} recipient(s) ${what}${blacklisted > 0 ? `; ${blacklisted} blacklisted, left so` : ''}`,
          );
        });
      });
  }
  cmd
    .command('import')
    .description(`add one pattern a line from FILE (- = stdin); # starts a comment`)
    .argument('<file>')
    .action(async (file: string, _o, c: Command) => {
      const input = file === '-' ? process.stdin : createReadStream(file);
      const patterns: Pattern[] = [];
      let lineNo = 0;
      const lines = createInterface({ input, crlfDelay: Infinity });
      try {
        for await (const line of lines) {
          lineNo += 1;
          const text = line.replace(/#.*/, '').trim();
          if (text === '') continue;
          try {
            patterns.push(parsePattern(text));
          } catch (err) {
            throw new UsageError(`line ${lineNo}: ${(err as Error).message}`);
          }
        }
      } catch (err) {
        if (err instanceof UsageError) throw err;
        throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      await withStore(c, async (store) => {
        const n = await store.addPatterns(list, patterns, Date.now(), { source: 'import' });
        console.log(`${n} added to the ${name} (${patterns.length} read)`);
      });
    });
}

export function program(): Command {
  const p = new Command('vouch')
    .description('challenge-response whitelist delivery agent for qmail and Postfix')
    .option('--home <dir>', 'the vouch home (default $VOUCH_HOME or ~/.vouch)')
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`vouch: ${str.replace(/^error: /, '')}`) })
    .version(`vouch ${packageVersion()}`, '-V, --version', 'print the version');

  p.command('init')
    .description('create the home: config, secret, web token, store, Maildir; print the lines to install')
    .option('--address <address>', 'your bare address, e.g. alice@example.org')
    .action(async (o: { address?: string }, c: Command) => {
      const hp = paths(c);
      const res = initHome(hp, o.address);
      const config = loadConfig(hp.dir);
      const { Store } = await import('../store/store.js');
      // The one place a store is created.
      const store = await Store.open(hp.db, { create: true });
      try {
        await store.repairListMap();
      } finally {
        await store.close();
      }
      const { ensureMaildir } = await import('../maildir/maildir.js');
      await ensureMaildir(config.delivery.maildir);
      const { installLines } = await import('./install.js');
      console.log(res.created.length > 0 ? `vouch: home ${hp.dir} ready (created ${res.created.join(', ')})` : `vouch: home ${hp.dir} already set up; nothing replaced`);
      if (res.created.includes('config.toml')) {
        console.log(
          res.classifier !== undefined
            ? `vouch: classifier enabled: ${res.classifier} (bootstrap it: vouch learn --ham ~/Maildir --spam ~/Maildir/.Junk)`
            : 'vouch: classifier disabled: no bogofilter found (apt install bogofilter, then set classifier.enabled = true)',
        );
      }
      console.log(installLines(hp, config, (c.optsWithGlobals() as Globals).home !== undefined || process.env['VOUCH_HOME'] !== undefined));
    });

  p.command('deliver')
    .description('deliver one message from stdin (run by qmail-local or Postfix local)')
    .addOption(new Option('--mta <mta>', 'force the MTA environment').choices(['qmail', 'postfix', 'procmail']))
    .action(async (o: { mta?: 'qmail' | 'postfix' | 'procmail' }, c: Command) => {
      const { main } = await import('../deliver/deliver.js');
      await main({ home: (c.optsWithGlobals() as Globals).home, mta: o.mta, env: process.env, now: Date.now });
    });

  const pending = p.command('pending').description('held messages');
  pending
    .command('list')
    .description('list held messages, newest first')
    .option('--json', 'print a JSON array')
    .option('--limit <n>', 'at most N messages', (v) => positiveInt(v, '--limit'))
    .option('--search <text>', 'only messages whose sender, From or Subject contains TEXT')
    .option('--reason <reason>', 'only messages held for REASON')
    .option('--trash', 'list deleted messages that can still be restored (pending restore ID)')
    .action(async (o: { json?: boolean; limit?: number; search?: string; reason?: string; trash?: boolean }, c: Command) => {
      await withStore(c, async (store) => {
        if (o.trash) {
          const rows = await store.trash(o.limit !== undefined ? { limit: o.limit } : {});
          if (o.json) {
            const out = rows.map((m) => ({ id: m.id, received: new Date(m.received).toISOString(), deleted: new Date(m.deleted).toISOString(), sender: m.sender, from: m.fromHeader, subject: m.subject, size: m.size, reason: m.reason }));
            process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          } else if (rows.length === 0) console.log('the trash is empty');
          else for (const m of rows) console.log(`${m.id}  deleted ${fmtTime(m.deleted)}  ${fmtSize(m.size).padStart(6)}  ${m.sender || '<>'}  "${m.subject}"`);
          return;
        }
        const rows = await store.list({
          ...(o.limit !== undefined ? { limit: o.limit } : {}),
          ...(o.search !== undefined ? { search: o.search } : {}),
          ...(o.reason !== undefined ? { reason: o.reason } : {}),
        });
        if (o.json) {
          const out = rows.map((m) => ({
            id: m.id,
            received: new Date(m.received).toISOString(),
            sender: m.sender,
            from: m.fromHeader,
            subject: m.subject,
            size: m.size,
            reason: m.reason,
            challenge: m.challenge,
            challenge_note: m.challengeNote,
            suspect: m.suspect,
            signals: m.signals,
            classifier: classifierOf(m),
          }));
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          return;
        }
        if (rows.length === 0) {
          console.log('no held messages');
          return;
        }
        for (const m of rows) {
          const ch = m.challenge === 'suppressed' ? `challenge suppressed: ${m.challengeNote}` : m.challenge === 'failed' ? `challenge failed: ${m.challengeNote}` : `challenge ${m.challenge}`;
          const c = describeSignal(m.signals);
          const cl = c === undefined || m.challengeNote.startsWith('classifier:') ? '' : `; classifier ${c.text}`;
          console.log(`${m.id}  ${fmtTime(m.received)}  ${fmtSize(m.size).padStart(6)}  ${m.sender || '<>'}  "${m.subject}"  [${m.reason}; ${ch}${cl}]`);
        }
      });
    });
  pending
    .command('show')
    .description('show one held message (headers and text body)')
    .argument('<id>')
    .option('--raw', 'print the stored bytes exactly')
    .option('--json', 'print what is known about it as JSON: why held, the challenge, every signal')
    .action(async (id: string, o: { raw?: boolean; json?: boolean }, c: Command) => {
      ids([id]);
      await withStore(c, async (store, config) => {
        const held = await store.get(id);
        const raw = held && held.state !== 'released' ? await store.raw(id) : undefined;
        // Not bad input but nothing found, as for release and delete of an id not held: exit 1.
        if (!held || !raw) throw new Error(`no held message ${id}`);
        if (o.json) {
          const { describeSignals } = await import('../auth/describe.js');
          const out = {
            id: held.id,
            received: new Date(held.received).toISOString(),
            sender: held.sender,
            from: held.fromHeader,
            subject: held.subject,
            size: held.size,
            reason: held.reason,
            challenge: held.challenge,
            challenge_note: held.challengeNote,
            suspect: held.suspect,
            signals: held.signals,
            explained: describeSignals(held.signals),
          };
          process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
          return;
        }
        if (o.raw) {
          process.stdout.write(raw);
          return;
        }
        const { renderText } = await import('./show.js');
        process.stdout.write(await renderText(held, raw, config));
      });
    });
  pending
    .command('release')
    .description('deliver held messages to the Maildir')
    .argument('<id...>')
    .option('--whitelist', 'also whitelist their senders')
    .action(async (list: string[], o: { whitelist?: boolean }, c: Command) => {
      const want = ids(list);
      await withStore(c, async (store, config) => {
        const { decideHeld } = await import('../release/actions.js');
        const res = await decideHeld(store, config, want, o.whitelist ? 'release-whitelist' : 'release');
        console.log(res.summary);
        if (res.missing.length > 0) process.exitCode = 1;
      });
    });
  pending
    .command('delete')
    .description('delete held messages')
    .argument('<id...>')
    .option('--blacklist', 'also blacklist their senders')
    .action(async (list: string[], o: { blacklist?: boolean }, c: Command) => {
      const want = ids(list);
      await withStore(c, async (store, config) => {
        const { decideHeld } = await import('../release/actions.js');
        const res = await decideHeld(store, config, want, o.blacklist ? 'delete-blacklist' : 'delete');
        console.log(res.summary);
        if (res.missing.length > 0) process.exitCode = 1;
      });
    });

  pending
    .command('restore')
    .description('bring deleted messages back from the trash (see pending list --trash)')
    .argument('<id...>')
    .action(async (list: string[], _o, c: Command) => {
      const want = ids(list);
      await withStore(c, async (store) => {
        const done = await store.restore(want, Date.now());
        const missing = want.filter((id) => !done.some((h) => h.id === id));
        console.log(`${done.length} restored${missing.length > 0 ? `; not in the trash: ${missing.join(' ')}` : ''}`);
        if (missing.length > 0) process.exitCode = 1;
      });
    });

  listCommands(p, 'white');
  listCommands(p, 'black');

  const address = p.command('address').description('print tagged addresses to hand out');
  const tagged = async (c: Command, make: (key: Buffer, config: Config, store: Store) => Promise<string> | string) => {
    await withStore(c, async (store, config, hp) => {
      const { taggedAddress } = await import('../tags/tags.js');
      const tag = await make(readSecret(hp), config, store);
      console.log(taggedAddress(config.identity.address, config.identity.delimiter, tag));
    });
  };
  address
    .command('dated')
    .description('an address anyone may use until it expires (default 5d)')
    .argument('[duration]', 'how long it works, e.g. 5d, 12h, 2w', '5d')
    .action(async (d: string, _o, c: Command) => {
      const ms = parseDuration(d);
      if (ms === undefined) throw new UsageError(`"${d}" is not a duration like 5d, 12h or 2w`);
      const { datedTag } = await import('../tags/tags.js');
      await tagged(c, (key) => datedTag(key, Date.now() + ms));
    });
  address
    .command('sender')
    .description('an address only ADDR may use (or its whole domain with --domain)')
    .argument('<addr>')
    .option('--domain', "accept the sender's whole domain")
    .action(async (addr: string, o: { domain?: boolean }, c: Command) => {
      const { addressKey } = await import('../mail/address.js');
      const key = addressKey(addr);
      if (key === undefined) throw new UsageError(`"${addr.slice(0, 80)}" is not a plain address`);
      const { senderTag } = await import('../tags/tags.js');
      await tagged(c, (k) => senderTag(k, o.domain ? `@${key.slice(key.lastIndexOf('@') + 1)}` : key));
    });
  address
    .command('keyword')
    .description('an address anyone may use until you revoke WORD')
    .argument('<word>')
    .action(async (word: string, _o, c: Command) => {
      const { keywordTag, isKeyword } = await import('../tags/tags.js');
      const w = word.toLowerCase();
      if (!isKeyword(w)) throw new UsageError('a keyword is 1-24 letters, digits or _, starting with a letter or digit');
      await tagged(c, async (k, _config, store) => {
        if (await store.keywordRevoked(w)) throw new UsageError(`keyword ${w} was revoked; choose another`);
        return keywordTag(k, w);
      });
    });
  address
    .command('revoke')
    .description('stop accepting mail to a keyword address')
    .argument('<word>')
    .action(async (word: string, _o, c: Command) => {
      const { isKeyword } = await import('../tags/tags.js');
      const w = word.toLowerCase();
      if (!isKeyword(w)) throw new UsageError('a keyword is 1-24 letters, digits or _');
      await withStore(c, async (store) => {
        await store.revokeKeyword(w, Date.now());
        console.log(`keyword ${w} revoked`);
      });
    });

  const blocklist = p.command('blocklist').description('the local aged blocklist of client IPs, and its exports for the SMTP layer');
  blocklist
    .command('list')
    .description('print the listed networks: network, listed until, count, first and last seen, why')
    .option('--all', 'also the entries whose listing ran out (kept to double the next one)')
    .option('--json', 'print a JSON array')
    .action(async (o: { all?: boolean; json?: boolean }, c: Command) => {
      await withStore(c, async (store) => {
        const rows = await store.blockEntries({ now: Date.now(), all: o.all === true });
        if (o.json) {
          process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
          return;
        }
        if (rows.length === 0) console.log('the local blocklist is empty');
        for (const e of rows) {
          const until = e.listedUntil === null ? 'until removed' : `until ${fmtTime(e.listedUntil)}`;
          console.log(`${e.net.padEnd(20)}  ${until}  ${e.count}x  first ${fmtTime(e.firstSeen)}  last ${fmtTime(e.lastSeen)}  repeats ${e.repeats}  (${e.why})`);
        }
      });
    });
  blocklist
    .command('add')
    .description('list IP addresses or networks (IP/LEN) until you remove them')
    .argument('<net...>')
    .action(async (list: string[], _o, c: Command) => {
      const nets = await blockNets(list);
      await withStore(c, async (store) => {
        for (const n of nets) await store.addBlock(n, Date.now());
        console.log(`${nets.length} listed`);
      });
    });
  blocklist
    .command('remove')
    .description('take IP addresses or networks off the list')
    .argument('<net...>')
    .action(async (list: string[], _o, c: Command) => {
      const nets = await blockNets(list);
      await withStore(c, async (store) => {
        let n = 0;
        for (const net of nets) n += await store.removeBlock(net);
        console.log(`${n} removed`);
      });
    });
  blocklist
    .command('export')
    .description('write the listed networks for the SMTP layer (atomically with --output)')
    .requiredOption('--format <format>', 'rbldnsd (ip4set), rbldnsd6 (ip6trie), tcprules, postfix (hash map), postfix-cidr, plain')
    .option('--output <file>', 'write here (a temporary file renamed over it) instead of stdout')
    .action(async (o: { format: string; output?: string }, c: Command) => {
      const { FORMATS, exportText, foldWhitelistedClients, writeAtomic } = await import('../release/blocklist.js');
      const format = FORMATS.find((f) => f === o.format);
      if (format === undefined) throw new UsageError(`--format must be one of ${FORMATS.join(', ')}`);
      await withStore(c, async (store, config) => {
        const now = Date.now();
        // A network whitelisted mail came from this week leaves the list before the SMTP layer sees it.
        await foldWhitelistedClients(store, config, now);
        const text = exportText(await store.blockEntries({ now }), format, now);
        if (o.output === undefined) process.stdout.write(text);
        else writeAtomic(o.output, text);
      });
    });

  p.command('check')
    .description('say what vouch would do with a message and why, every signal included; stores and sends nothing')
    .argument('[file]', 'the message (default: stdin)')
    .option('--sender <address>', 'the envelope sender (default: $SENDER, else the Return-Path: header)')
    .option('--json', 'print a JSON object')
    .action(async (file: string | undefined, o: { sender?: string; json?: boolean }, c: Command) => {
      let raw: Buffer;
      try {
        raw = file === undefined || file === '-' ? readFileSync(0) : readFileSync(file);
      } catch (err) {
        throw new UsageError(`cannot read ${file ?? 'stdin'}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      await withStore(c, async (store, config) => {
        const { checkMessage } = await import('./check.js');
        const report = await checkMessage(store, config, raw, { sender: o.sender, env: process.env, now: Date.now() });
        process.stdout.write(o.json ? `${JSON.stringify(report.json, null, 2)}\n` : report.text);
      });
    });

  p.command('expire')
    .description('remove held mail past pending.lifetime and empty the trash past pending.trash, then apply the learning queue (for cron); never writes to senders')
    .action(async (_o, c: Command) => {
      await withStore(c, async (store, config, hp) => {
        const { expire } = await import('../release/actions.js');
        console.log(await expire(store, config, Date.now()));
        if (!config.classifier.enabled) return;
        // The queue's failure is the classifier's, not expiry's: said, and left for the next run.
        try {
          const { learnQueue } = await import('./learn.js');
          const line = await learnQueue(store, config, hp, Date.now(), true);
          if (line !== undefined) console.log(line);
        } catch (err) {
          // Another learner at work takes this queue too: nothing to do, nothing wrong.
          if ((err as Error).name === 'LearnBusyError') return;
          process.stderr.write(`vouch: learning: ${(err as Error).message}\n`);
          process.exitCode = 1;
        }
      });
    });

  p.command('learn')
    .description('apply the learning queue to the classifier; bootstrap it from Maildirs, mbox files or folders of messages')
    .option('--ham <path...>', 'mailboxes of wanted mail (your inbox)')
    .option('--spam <path...>', 'mailboxes of spam (your junk folder)')
    .action(async (o: { ham?: string[]; spam?: string[] }, c: Command) => {
      await withStore(c, async (store, config, hp) => {
        const { learnCommand } = await import('./learn.js');
        await learnCommand(store, config, hp, { ham: o.ham ?? [], spam: o.spam ?? [] });
      });
    });

  p.command('digest')
    .description('mail yourself a summary of mail held since the last digest (for cron); silent when nothing is new')
    .option('-v, --verbose', 'say what was done (cron mails any output, so the default is none)')
    .action(async (o: { verbose?: boolean }, c: Command) => {
      await withStore(c, async (store, config) => {
        const { sendDigest } = await import('../digest/digest.js');
        let res;
        try {
          res = await sendDigest(store, config, Date.now());
        } catch (err) {
          const code = (err as { code?: unknown }).code;
          throw new Error(`the digest was not sent (${typeof code === 'string' ? code : (err as Error).message}); the next run tries again`);
        }
        if (o.verbose) console.log(res.sent ? `digest of ${res.count} held message(s) sent to ${config.identity.address}` : 'nothing new held; no digest');
      });
    });

  p.command('fsck')
    .description('check the home: clean old Maildir tmp files, finish interrupted releases, check the store')
    .action(async (_o, c: Command) => {
      await withStore(c, async (store, config) => {
        const { fsck } = await import('./fsck.js');
        const res = await fsck(store, config, Date.now());
        console.log(res.summary);
        if (!res.ok) process.exitCode = 1;
      });
    });

  p.command('web')
    .description('serve the review page (default 127.0.0.1:8025)')
    .option('--listen <host:port>', 'where to listen')
    .option('--hash-password', 'read a password on stdin and print its scrypt hash for web.password_hash')
    .action(async (o: { listen?: string; hashPassword?: boolean }, c: Command) => {
      const { runWeb } = await import('../../web/server.js');
      await runWeb({ home: paths(c), listen: o.listen, hashPassword: o.hashPassword === true });
    });

  // Read by sendArgv() before commander sees it; here for `vouch --help`.
  p.command('send').description('the sendmail of your mail client: whitelists the recipients, records the Message-ID (sendmail flags)');

  p.command('serve')
    .description('the resident LMTP server for many users (Postfix: virtual_transport = lmtp:unix:PATH)')
    .option('--listen <where>', 'unix:PATH (mode 0660) or HOST:PORT', 'unix:/run/vouch/lmtp.sock')
    .option('--homes <template>', "each recipient's vouch home: %u user, %d domain, %e extension", '/home/%u/.vouch')
    .option('--delimiter <char>', 'the recipient delimiter between user and extension', '+')
    .option('--max-size <size>', 'the largest message taken', '64M')
    .option('--max-connections <n>', 'connections at once', (v) => positiveInt(v, '--max-connections'), 100)
    .option('--stores <n>', 'stores kept open across all homes', (v) => positiveInt(v, '--stores'), 100)
    .option('--socket-mode <mode>', 'the Unix socket\'s mode, octal', '0660')
    .action(async (o: { listen: string; homes: string; delimiter: string; maxSize: string; maxConnections: number; stores: number; socketMode: string }) => {
      const { runServe } = await import('../serve/server.js');
      await runServe(o);
    });

  p.command('version').description('print the version').action(() => {
    console.log(`vouch ${packageVersion()}`);
  });
  return p;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { version: string }).version;
}

/** The MTA a failed `deliver` command line answers to: the one its --mta names (even when the rest
 * of the line is bad), else the one the environment shows, else qmail. */
export function mtaOf(argv: readonly string[], env: NodeJS.ProcessEnv): Mta {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const v = a === '--mta' ? argv[i + 1] : a.startsWith('--mta=') ? a.slice(6) : undefined;
    if (v === 'qmail' || v === 'postfix' || v === 'procmail') return v;
  }
  return detectMta(env) ?? 'qmail';
}

/** IP[/LEN] arguments as canonical networks; a usage error names the first bad one. */
async function blockNets(list: readonly string[]): Promise<string[]> {
  const { parseNet } = await import('../mail/ip.js');
  return list.map((a) => {
    const n = parseNet(a);
    if (n === undefined) throw new UsageError(`"${a.slice(0, 60)}" is not an IP address or network (IP/LEN, IPv4 /8 to /32, IPv6 /16 to /128)`);
    return n.text;
  });
}

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} must be a positive whole number`);
  return n;
}

/** `vouch [--home DIR] send …`: the words after `send` and the home, or undefined for any other
 * command. sendmail's flags (-oi, -t, -f ADDR…) are not commander's: they are read by send/argv.ts. */
export function sendArgv(argv: readonly string[]): { home: string | undefined; rest: string[] } | undefined {
  let home: string | undefined;
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i] ?? '';
    if (a === 'send') {
      // `vouch send --home DIR …` too: no sendmail has a --home option.
      const rest = argv.slice(i + 1);
      while (rest[0] === '--home' || rest[0]?.startsWith('--home=') === true) {
        const w = rest.shift() ?? '';
        home = w === '--home' ? rest.shift() : w.slice(7);
      }
      return { home, rest };
    }
    if (a === '--home') home = argv[++i];
    else if (a.startsWith('--home=')) home = a.slice(7);
    else return undefined;
  }
  return undefined;
}

const SEND_HELP = `Usage: vouch send [sendmail options] [--] [recipient...]

The sendmail of your mail client: hands the message on stdin to send.sendmail with the
same arguments and, once it has taken it, whitelists every recipient (arguments, To, Cc,
Bcc) and records the Message-ID, so that replies arrive. Reads -t, -f/-r, -F, -i, -oi,
-oem and the rest of sendmail's flags as sendmail does and passes them on unchanged.
`;

export async function run(argv: readonly string[]): Promise<void> {
  // `vouch whitelist list | head`: a reader that goes away is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => process.exit(err.code === 'EPIPE' ? 0 : 1));
  const send = sendArgv(argv);
  if (send !== undefined) {
    if (send.rest.length === 1 && send.rest[0] === '--help') {
      process.stdout.write(SEND_HELP);
      return;
    }
    let code: number;
    try {
      const { runSend } = await import('../send/send.js');
      const { readInput } = await import('../deliver/stdio.js');
      code = await runSend({
        home: send.home,
        argv: send.rest,
        env: process.env,
        now: Date.now,
        input: () => readInput(0),
        stderr: (line) => process.stderr.write(`${line}\n`),
      });
    } catch (err) {
      // Anything unforeseen: the mail client is told to try again later (EX_TEMPFAIL), as sendmail would.
      process.stderr.write(`vouch send: ${(err as Error)?.message ?? String(err)}\n`);
      code = 75;
    }
    process.exit(code);
  }
  const p = program();
  try {
    await p.parseAsync([...argv]);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      if (argv.includes('deliver') && err.exitCode !== 0) process.exit(exitCode(mtaOf(argv, process.env), 'tempfail'));
      // A usage error commander caught (unknown option, missing argument) is bad input like any
      // other: exit 2, as our own UsageError.
      process.exit(err.exitCode === 0 ? 0 : 2);
    }
    const msg = err instanceof ConfigError || err instanceof UsageError ? err.message : (err as Error)?.message ?? String(err);
    process.stderr.write(`vouch: ${msg}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
}
