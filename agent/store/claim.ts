// Who sends a held message's challenge. The hold that stores a message (or a retry that finds its
// challenge abandoned) claims it in the same transaction: state 'sending', and in the note a mark
// naming the claimer (time, process, host). Only the claimer sends, so identical copies delivered
// at once send one challenge. A claim is abandoned when its process is gone (same host) or when it
// is older than any delivery can live (the lease); a later retry or `vouch fsck` takes it over.

/** How long a claim outlives its delivery's deadline: the sendmail child runs synchronously (the
 * deadline's timer cannot fire while it runs) and is killed after 60 s. */
const LEASE_MARGIN_MS = 120_000;

export interface ClaimMark {
  readonly at: number;
  readonly pid: number;
  readonly host: string;
}

/** The lease for a delivery deadline: a claim older than this belongs to no living delivery. */
export function claimLease(deadlineMs: number): number {
  return deadlineMs + LEASE_MARGIN_MS;
}

/** The note that marks a claim: `claimed <ms> by <pid>@<host> #<nonce>` (the host cut to safe
 * characters, the nonce only to tell two claims of one process apart). */
export function claimNote(m: ClaimMark, nonce: string = Math.random().toString(36).slice(2, 10)): string {
  return `claimed ${Math.floor(m.at)} by ${Math.floor(m.pid)}@${safeHost(m.host)} #${nonce.replace(/[^a-z0-9]/g, '')}`;
}

/** A host name as a claim note holds it. */
function safeHost(host: string): string {
  return host.toLowerCase().replace(/[^a-z0-9.-]/g, '').slice(0, 100) || 'localhost';
}

const NOTE = /^claimed (\d{1,16}) by (\d{1,10})@([a-z0-9.-]{1,100}) #[a-z0-9]*$/;

/** The mark in a claim note, or undefined when the note is not one. */
export function readClaim(note: string): ClaimMark | undefined {
  const m = NOTE.exec(note);
  if (!m) return undefined;
  return { at: Number(m[1]), pid: Number(m[2]), host: m[3] ?? '' };
}

/** Where a claim is judged: now, the lease, this host, and whether a process of this host lives. */
export interface ClaimView {
  readonly now: number;
  readonly leaseMs: number;
  readonly host: string;
  readonly alive: (pid: number) => boolean;
}

/** Whether a challenge in `state` with `note` may be taken over: a 'pending' one always (nobody
 * claimed it: a store written by an older vouch, or a crash before the claim), a 'sending' one
 * when its mark is unreadable, older than the lease, or names a process of this host that is gone.
 * Every other state is settled. */
export function claimAbandoned(state: string, note: string, v: ClaimView): boolean {
  if (state === 'pending') return true;
  if (state !== 'sending') return false;
  const m = readClaim(note);
  if (m === undefined) return true;
  if (v.now - m.at >= v.leaseMs) return true;
  return m.host === safeHost(v.host) && !v.alive(m.pid);
}

/** process.kill(pid, 0): true while a process with that id exists (EPERM: it exists, not ours). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
