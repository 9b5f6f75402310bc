// The decision order of DESIGN.md as one pure function: facts in, verdict out. Everything it needs
// was found out before (tag checked, lists looked up); everything it decides is done after.

export type TagFact =
  | { readonly kind: 'none' }
  /** A confirm address: `heldId` is set when the MAC is valid, bound to this sender and still unused;
   * `refused` says why a reply that may otherwise be good is not taken (e.g. an automatic reply). */
  | { readonly kind: 'confirm'; readonly heldId: string | undefined; readonly refused?: string }
  | { readonly kind: 'dated' | 'sender' | 'keyword'; readonly valid: boolean };

export interface Facts {
  /** The message already carries our own Delivered-To line. */
  readonly loop: boolean;
  readonly tag: TagFact;
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
  if (f.tag.kind === 'confirm') {
    if (f.tag.refused !== undefined) return { action: 'drop', why: `confirmation refused: ${f.tag.refused}` };
    return f.tag.heldId
      ? { action: 'confirm', heldId: f.tag.heldId, why: 'confirmation reply' }
      : { action: 'drop', why: 'invalid or used confirmation address' };
  }
  if (f.tag.kind !== 'none' && f.tag.valid) return { action: 'deliver', why: `valid ${f.tag.kind} address` };
  if (f.listed === 'black') {
    return f.blacklistAction === 'junk' ? { action: 'junk', why: 'blacklisted sender' } : { action: 'drop', why: 'blacklisted sender' };
  }
  if (f.listed === 'white') return { action: 'deliver', why: 'whitelisted sender' };
  return { action: 'hold', why: 'unknown sender', silent: undefined };
}
