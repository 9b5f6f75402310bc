// Test helpers for the challenge path: a copy of test/bin/fake-sendmail configured as a home's
// sendmail program, what it recorded, and the confirm extension read back from a challenge.

import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { ROOT, setConfig, type TestHome } from './helpers.js';

export interface Sent {
  readonly argv: string[];
  readonly raw: Buffer;
}

export interface FakeSendmail {
  readonly path: string;
  /** Every run so far, oldest first. */
  sent(): Sent[];
  /** Makes later runs exit with this code. */
  exitWith(code: number): void;
  /** Makes later runs take this many seconds (after reading the message) before they exit. */
  slowBy(seconds: number): void;
}

/** Installs the fake as `name` (e.g. "sendmail" or "qmail-inject") and points the home at it. */
export function fakeSendmail(home: TestHome, name = 'sendmail'): FakeSendmail {
  const dir = join(dirname(home.dir), 'bin');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  copyFileSync(join(ROOT, 'test', 'bin', 'fake-sendmail'), path);
  setConfig(home.dir, { send: { transport: 'sendmail', sendmail: path } });
  return {
    path,
    sent() {
      let names: string[];
      try {
        names = readdirSync(join(dir, 'sent'));
      } catch {
        return [];
      }
      const runs = [...new Set(names.map((n) => n.replace(/\.(argv|eml)$/, '')))].sort((a, b) => (BigInt(a.split('.')[0] ?? 0) < BigInt(b.split('.')[0] ?? 0) ? -1 : 1));
      return runs.map((r) => ({
        argv: readFileSync(join(dir, 'sent', `${r}.argv`), 'utf8').replace(/\n$/, '').split('\n'),
        raw: readFileSync(join(dir, 'sent', `${r}.eml`)),
      }));
    },
    exitWith(code: number) {
      writeFileSync(join(dir, 'exit'), `${code}\n`);
    },
    slowBy(seconds: number) {
      writeFileSync(join(dir, 'delay'), `${seconds}\n`);
    },
  };
}

export function parseMail(raw: Buffer): Promise<ParsedMail> {
  return simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
}

/** The extension of the confirm address a challenge asks to reply to (`confirm-<id>.<mac>`). */
export async function confirmExt(raw: Buffer, delimiter = '-'): Promise<string> {
  const mail = await parseMail(raw);
  const addr = mail.replyTo?.value[0]?.address;
  if (!addr) throw new Error('the challenge has no Reply-To');
  const local = addr.slice(0, addr.lastIndexOf('@'));
  return local.slice(local.indexOf(delimiter) + 1);
}

/** A reply as a mail program would write it: quoting the request, subject "Re: …". */
export function reply(opts: { from?: string; to: string; subject?: string; inReplyTo?: string; body?: string; headers?: string[] }): string {
  return [
    `From: ${opts.from ?? 'Bob <bob@example.com>'}`,
    `To: ${opts.to}`,
    `Subject: ${opts.subject ?? 'Re: Please confirm your message'}`,
    'Date: Mon, 23 Nov 2026 11:00:00 +0000',
    `Message-ID: <r${Math.random().toString(36).slice(2)}@example.com>`,
    ...(opts.inReplyTo ? [`In-Reply-To: ${opts.inReplyTo}`] : []),
    ...(opts.headers ?? []),
    '',
    opts.body ?? 'Yes, that was me.\n\n> Hello,\n> you wrote to alice@example.org.\n',
  ].join('\n');
}
