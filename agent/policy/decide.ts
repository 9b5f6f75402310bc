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

export interface Facts {
  /** The message already carries our own Delivered-To line. */
  readonly loop: boolean;
  readonly tag: TagFact;
  /** The list the sender is on (for a live confirmation: the replying or the held sender). */
  readonly listed: 'white' | 'black' | undefined;
  readonly blacklistAction: 'drop' | 'junk';
}

export type Verdict =
  | { readonly action: 'confirm'; readonly heldId: string; readonly why: string }
  | { readonly action: 'drop'; readonly why: string }
  | { readonly action: 'junk'; readonly why: string }
  | { readonly action: 'deliver'; readonly why: string }
  /** `silent` names why no challenge may go out whatever the challenge policy says. */
  | { readonly action: 'hold'; readonly why: string; readonly silent: string | undefined };

export function decide(f: Facts): Verdict {
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
  if (f.listed === 'black') {
    return f.blacklistAction === 'junk' ? { action: 'junk', why: 'blacklisted sender' } : { action: 'drop', why: 'blacklisted sender' };
  }
  if (f.listed === 'white') return { action: 'deliver', why: 'whitelisted sender' };
  return { action: 'hold', why: 'unknown sender', silent: undefined };
}
