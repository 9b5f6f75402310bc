// `vouch check`: what vouch would do with a message and why, with every signal, through the same
// functions a delivery uses; nothing is stored and nothing is sent. The rate limits, which depend
// on the moment, are the one check it does not make.

import type { Config } from '../home/config.js';
import { addressKey } from '../mail/address.js';
import { firstAddress, readHeaders } from '../mail/header.js';
import { decide } from '../policy/decide.js';
import type { Store } from '../store/store.js';
import { describeSignals } from '../auth/describe.js';
import { printable } from './show.js';
import { judge, screening } from '../auth/screen.js';

export interface CheckReport {
  readonly text: string;
  readonly json: Record<string, unknown>;
}

/** The envelope sender: as given, else $SENDER, else the Return-Path: header ('' for <>). */
function senderOf(given: string | undefined, env: NodeJS.ProcessEnv, returnPath: string | undefined): string {
  if (given !== undefined) return given === '<>' ? '' : given;
  if (env['SENDER'] !== undefined) return env['SENDER'];
  if (returnPath === undefined) return '';
  return firstAddress(returnPath) ?? '';
}

export async function checkMessage(
  store: Store,
  config: Config,
  raw: Buffer,
  o: { readonly sender: string | undefined; readonly env: NodeJS.ProcessEnv; readonly now: number },
): Promise<CheckReport> {
  const headers = readHeaders(raw, config.delivery.header_limit);
  const sender = senderOf(o.sender, o.env, headers.get('return-path'));
  const listed = addressKey(sender) === undefined ? undefined : (await store.lookup(sender))?.list;
  const verdict = decide({ loop: false, tag: { kind: 'none' }, listed, blacklistAction: config.delivery.blacklist });
  const lines = [`Sender:    ${sender || '<>'}`, `Verdict:   ${verdict.action} (${verdict.why})`];
  const json: Record<string, unknown> = { sender, action: verdict.action, why: verdict.why };
  if (verdict.action === 'hold') {
    const input = { config, sender, message: raw, headers, now: o.now, vars: o.env };
    const s = await screening(input, verdict.silent);
    const j = await judge(input, s, store);
    lines.push(j.hold === undefined ? 'Challenge: would be sent (unless a rate limit says otherwise)' : `Challenge: none: ${j.hold}`);
    if (j.suspect) lines.push('Suspect:   yes (forged or blocklisted: a confirmation would not release it)');
    lines.push(...describeSignals(j.signals).map((l) => `  ${printable(l)}`));
    Object.assign(json, { challenge: j.hold === undefined, no_challenge: j.hold ?? null, suspect: j.suspect, signals: j.signals, explained: describeSignals(j.signals) });
  }
  return { text: `${lines.join('\n')}\n`, json };
}
