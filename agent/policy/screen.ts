// The checks after the suppression rules, in DESIGN.md's order: the visible-recipient rule, the
// authentication policy, then the DNS blocklists and the local blocklist. First "no challenge"
// wins; a forged or blocklisted message is held as suspect whatever came first.

import { authPolicy, type AuthSignal, type DnsFallback, type RequirePolicy } from './auth.js';
import { blocklistHold, type DnsblAnswer } from './blocklist.js';
import type { BlockEntry } from '../store/store.js';

export interface ScreenFacts {
  readonly require: RequirePolicy;
  readonly onDnsError: DnsFallback;
  /** undefined when the rule is off; else whether the user's address is in To:/Cc:. */
  readonly visible: boolean | undefined;
  readonly auth: AuthSignal | undefined;
  readonly dnsbl: readonly DnsblAnswer[];
  readonly local: BlockEntry | undefined;
  readonly now: number;
}

export interface ScreenVerdict {
  readonly hold: string | undefined;
  readonly suspect: boolean;
}

export function screen(f: ScreenFacts): ScreenVerdict {
  const auth = authPolicy(f.require, f.onDnsError, f.auth);
  const listed = blocklistHold(f.dnsbl, f.local, f.now);
  const suspect = auth.suspect || listed !== undefined;
  const hold = (f.visible === false ? 'your address is in neither To: nor Cc:' : undefined) ?? auth.hold ?? listed;
  return { hold, suspect };
}
