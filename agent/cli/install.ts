// The lines `vouch init` prints for the user to install: ~/.qmail and ~/.qmail-default for qmail,
// ~/.forward or mailbox_command for Postfix. Absolute paths throughout, because neither MTA runs
// commands with the user's PATH.

import { realpathSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../home/config.js';
import type { HomePaths } from '../home/home.js';
import { packageRoot } from '../home/home.js';

const q = (s: string) => (/^[A-Za-z0-9_./:=@%+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The command line an MTA runs, e.g. `/usr/bin/node /opt/vouch/dist/agent/cli.js deliver`. */
export function deliverCommand(home: HomePaths | undefined, mta: 'qmail' | 'postfix'): string {
  const node = realpathSync(process.execPath);
  // The folder's real path, not the file's: dist/agent/cli.js is a symlink to cli/launch.cjs (postbuild).
  const cli = join(realpathSync(join(packageRoot(), 'dist', 'agent')), 'cli.js');
  const parts = [q(node), q(cli)];
  if (home) parts.push('--home', q(home.dir));
  parts.push('deliver');
  if (mta === 'postfix') parts.push('--mta', 'postfix');
  return parts.join(' ');
}

export function installLines(home: HomePaths, config: Config, explicitHome: boolean): string {
  const h = explicitHome ? home : undefined;
  const qmail = deliverCommand(h, 'qmail');
  const postfix = deliverCommand(h, 'postfix');
  return [
    '',
    `qmail (identity.delimiter = "-", now "${config.identity.delimiter}"): put this one line in ~/.qmail and in ~/.qmail-default`,
    `  |${qmail}`,
    '',
    `Postfix (identity.delimiter = "+", now "${config.identity.delimiter}"; main.cf: recipient_delimiter = +): put this line in ~/.forward`,
    `  "|${postfix}"`,
    '  or, for every user, in main.cf:',
    `  mailbox_command = ${postfix}`,
    '',
    `Mail goes to ${config.delivery.maildir}; run \`vouch expire\` daily from cron (and \`vouch digest\` for a daily summary of held mail).`,
    '',
    'So that the people you already write to are never challenged, whitelist the recipients of your sent mail:',
    '  vouch whitelist learn ~/Maildir/.Sent   (Maildirs or mbox files; --dry-run to see first)',
    'and set `vouch send` as the sendmail of your mail client (see the README).',
  ].join('\n');
}
