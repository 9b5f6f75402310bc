// The decision order of DESIGN.md as one pure function: facts in, verdict out. Everything it needs
// was found out before (tag checked, lists looked up); everything it decides is done after.

/** What a `confirm-` address turned out to be. */
export type ConfirmFact =
  /** Valid, unused and bound to this sender: a confirmation unless `automatic` names why a
   * program wrote the reply. */
  | { readonly state: 'live'; readonly heldId: string; readonly automatic?: string }
  /** Unused, but not bound to this sender (another sender, or a forged MAC). */
  | { readonly state: 'foreign' }
  /** Used, or its message expired or deleted (or never known): the bare address. */
  | { readonly state: 'spent' };

export type TagFact =
  | { readonly kind: 'none' }
  | ({ readonly kind: 'confirm' } & ConfirmFact)
  /** A `confirm-` extension that does not parse (bad length, padding, trailing text). */
  | { readonly kind: 'malformed' }
  | { readonly kind: 'dated' | 'sender' | 'keyword'; readonly valid: boolean };

/** A message that names mail vouch recorded as leaving: a reply to the user's own mail (its
 * In-Reply-To or References names a Message-ID `vouch send` recorded), or vouch's own digest coming
 * back (its Message-ID is one `vouch digest` recorded). `whitelist`: the config asks for repliers
 * to be whitelisted and a person wrote this one (not the null sender, not an automatic reply). */
export type ReplyFact =
  | { readonly kind: 'none' }
  | { readonly kind: 'reply'; readonly whitelist: boolean }
  | { readonly kind: 'digest' };

export interface Facts {
  /** The message already carries our own Delivered-To line. */
  readonly loop: boolean;
  readonly tag: TagFact;
  /** The list the sender is on (for a live confirmation: the replying or the held sender). */
  readonly listed: 'white' | 'black' | undefined;
  readonly blacklistAction: 'drop' | 'junk';
  /** Left out when it was not looked up (see needsReplyFact): as `{ kind: 'none' }`. */
  readonly reply?: ReplyFact;
}

export type Verdict =
  | { readonly action: 'confirm'; readonly heldId: string; readonly why: string }
  | { readonly action: 'drop'; readonly why: string }
  | { readonly action: 'junk'; readonly why: string }
  /** `whitelist`: also whitelist the sender (exactly), a replier the config wants listed. */
  | { readonly action: 'deliver'; readonly why: string; readonly whitelist?: true }
  /** `silent` names why no challenge may go out whatever the challenge policy says. */
  | { readonly action: 'hold'; readonly why: string; readonly silent: string | undefined };

export function decide(f: Facts): Verdict {
  const early = beforeReplies(f);
  if (early !== undefined) return early;
  // Step 3, before the blacklist: someone the user wrote to (even one they once blacklisted) is
  // answering. Whitelisting never moves a blacklisted sender, and never repeats a whitelisted one.
  if (f.reply?.kind === 'digest') return { action: 'deliver', why: 'vouch digest' };
  if (f.reply?.kind === 'reply') {
    return f.reply.whitelist && f.listed === undefined
      ? { action: 'deliver', why: 'reply to your mail', whitelist: true }
      : { action: 'deliver', why: 'reply to your mail' };
  }
  if (f.listed === 'black') {
    return f.blacklistAction === 'junk' ? { action: 'junk', why: 'blacklisted sender' } : { action: 'drop', why: 'blacklisted sender' };
  }
  if (f.listed === 'white') return { action: 'deliver', why: 'whitelisted sender' };
  return { action: 'hold', why: 'unknown sender', silent: undefined };
}

/** Whether the reply fact can change the decision: the message got past the loop check and the
 * tags (steps 1 and 2) and its sender is not whitelisted (delivered anyway). Only then does the
 * delivery look its ids up in the store. */
export function needsReplyFact(f: Facts): boolean {
  return f.listed !== 'white' && beforeReplies(f) === undefined;
}

/** The loop check and steps 1 and 2: the confirm address and the other tags. */
function beforeReplies(f: Facts): Verdict | undefined {
  if (f.loop) return { action: 'hold', why: 'mail loop', silent: 'mail loop' };
  if (f.tag.kind === 'malformed') return { action: 'drop', why: 'malformed confirmation address' };
  if (f.tag.kind === 'confirm') {
    // A reply that would confirm but must not is dropped; a blacklisted sender never confirms and
    // is treated as the blacklist says. A spent address is the bare address.
    if (f.tag.state === 'foreign') return { action: 'drop', why: 'confirmation refused: not from the challenged sender' };
    if (f.tag.state === 'live') {
      if (f.tag.automatic !== undefined) return { action: 'drop', why: `confirmation refused: automatic reply (${f.tag.automatic})` };
      if (f.listed !== 'black') return { action: 'confirm', heldId: f.tag.heldId, why: 'confirmation reply' };
    }
  }
  if ((f.tag.kind === 'dated' || f.tag.kind === 'sender' || f.tag.kind === 'keyword') && f.tag.valid) {
    return { action: 'deliver', why: `valid ${f.tag.kind} address` };
  }
  return undefined;
}
