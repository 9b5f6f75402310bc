// The decision order of DESIGN.md as a table of facts → verdict.
import test from 'ava';
import { decide, needsReplyFact, type Facts, type TagFact, type Verdict } from '../agent/policy/decide.js';

const none: TagFact = { kind: 'none' };
const base: Facts = { loop: false, tag: none, listed: undefined, blacklistAction: 'drop' };

const table: [string, Partial<Facts>, Verdict][] = [
  ['an unknown sender is held, a challenge allowed', {}, { action: 'hold', why: 'unknown sender', silent: undefined }],
  ['a whitelisted sender is delivered', { listed: 'white' }, { action: 'deliver', why: 'whitelisted sender' }],
  ['a blacklisted sender is dropped', { listed: 'black' }, { action: 'drop', why: 'blacklisted sender' }],
  ['a blacklisted sender goes to junk when configured', { listed: 'black', blacklistAction: 'junk' }, { action: 'junk', why: 'blacklisted sender' }],
  ['a live confirm bound to the sender releases', { tag: { kind: 'confirm', state: 'live', heldId: 'abcdefghijklm' } }, { action: 'confirm', heldId: 'abcdefghijklm', why: 'confirmation reply' }],
  ['a live confirm from a whitelisted sender releases', { tag: { kind: 'confirm', state: 'live', heldId: 'abcdefghijklm' }, listed: 'white' }, { action: 'confirm', heldId: 'abcdefghijklm', why: 'confirmation reply' }],
  ['a live confirm from a blacklisted sender does not confirm: the blacklist drops it', { tag: { kind: 'confirm', state: 'live', heldId: 'abcdefghijklm' }, listed: 'black' }, { action: 'drop', why: 'blacklisted sender' }],
  ['a live confirm from a blacklisted sender goes to junk when configured', { tag: { kind: 'confirm', state: 'live', heldId: 'abcdefghijklm' }, listed: 'black', blacklistAction: 'junk' }, { action: 'junk', why: 'blacklisted sender' }],
  ['an automatic reply to a live confirm is dropped', { tag: { kind: 'confirm', state: 'live', heldId: 'abcdefghijklm', automatic: 'Precedence: bulk' } }, { action: 'drop', why: 'confirmation refused: automatic reply (Precedence: bulk)' }],
  ['an automatic reply to a live confirm is dropped even from a whitelisted sender', { tag: { kind: 'confirm', state: 'live', heldId: 'abcdefghijklm', automatic: 'null sender' }, listed: 'white' }, { action: 'drop', why: 'confirmation refused: automatic reply (null sender)' }],
  ['a foreign reply to a live confirm is dropped', { tag: { kind: 'confirm', state: 'foreign' } }, { action: 'drop', why: 'confirmation refused: not from the challenged sender' }],
  ['a foreign reply to a live confirm is dropped even from a whitelisted sender', { tag: { kind: 'confirm', state: 'foreign' }, listed: 'white' }, { action: 'drop', why: 'confirmation refused: not from the challenged sender' }],
  ['a used or expired confirm from a whitelisted sender is delivered', { tag: { kind: 'confirm', state: 'spent' }, listed: 'white' }, { action: 'deliver', why: 'whitelisted sender' }],
  ['a used or expired confirm from an unknown sender is held as at the bare address', { tag: { kind: 'confirm', state: 'spent' } }, { action: 'hold', why: 'unknown sender', silent: undefined }],
  ['a used or expired confirm from a blacklisted sender is dropped as at the bare address', { tag: { kind: 'confirm', state: 'spent' }, listed: 'black' }, { action: 'drop', why: 'blacklisted sender' }],
  ['a confirm- extension that does not parse is dropped', { tag: { kind: 'malformed' } }, { action: 'drop', why: 'malformed confirmation address' }],
  ['a confirm- extension that does not parse is dropped even from a whitelisted sender', { tag: { kind: 'malformed' }, listed: 'white' }, { action: 'drop', why: 'malformed confirmation address' }],
  ['a valid dated address delivers', { tag: { kind: 'dated', valid: true } }, { action: 'deliver', why: 'valid dated address' }],
  ['a valid sender address delivers', { tag: { kind: 'sender', valid: true } }, { action: 'deliver', why: 'valid sender address' }],
  ['a valid keyword address delivers', { tag: { kind: 'keyword', valid: true } }, { action: 'deliver', why: 'valid keyword address' }],
  ['a valid tag wins over the blacklist', { tag: { kind: 'keyword', valid: true }, listed: 'black' }, { action: 'deliver', why: 'valid keyword address' }],
  ['an expired dated address is bare: held', { tag: { kind: 'dated', valid: false } }, { action: 'hold', why: 'unknown sender', silent: undefined }],
  ['an invalid tag is bare: the whitelist still applies', { tag: { kind: 'sender', valid: false }, listed: 'white' }, { action: 'deliver', why: 'whitelisted sender' }],
  ['an invalid tag is bare: the blacklist still applies', { tag: { kind: 'keyword', valid: false }, listed: 'black' }, { action: 'drop', why: 'blacklisted sender' }],
  ['a reply to your mail is delivered', { reply: { kind: 'reply', whitelist: false } }, { action: 'deliver', why: 'reply to your mail' }],
  ['a reply to your mail is delivered and whitelisted when asked', { reply: { kind: 'reply', whitelist: true } }, { action: 'deliver', why: 'reply to your mail', whitelist: true }],
  ['a reply to your mail wins over the blacklist, and never lists a blacklisted sender', { reply: { kind: 'reply', whitelist: true }, listed: 'black' }, { action: 'deliver', why: 'reply to your mail' }],
  ['a reply from a whitelisted sender is not whitelisted again', { reply: { kind: 'reply', whitelist: true }, listed: 'white' }, { action: 'deliver', why: 'reply to your mail' }],
  ['vouch digest coming back is delivered', { reply: { kind: 'digest' } }, { action: 'deliver', why: 'vouch digest' }],
  ['a valid tag is decided before a reply', { tag: { kind: 'dated', valid: true }, reply: { kind: 'reply', whitelist: true } }, { action: 'deliver', why: 'valid dated address' }],
  ['a foreign confirm is decided before a reply', { tag: { kind: 'confirm', state: 'foreign' }, reply: { kind: 'reply', whitelist: false } }, { action: 'drop', why: 'confirmation refused: not from the challenged sender' }],
  ['a spent confirm is the bare address: a reply to your mail there is delivered', { tag: { kind: 'confirm', state: 'spent' }, reply: { kind: 'reply', whitelist: false } }, { action: 'deliver', why: 'reply to your mail' }],
  ['a live confirm from a blacklisted sender that replies to your mail is delivered, not confirmed', { tag: { kind: 'confirm', state: 'live', heldId: 'abcdefghijklm' }, listed: 'black', reply: { kind: 'reply', whitelist: true } }, { action: 'deliver', why: 'reply to your mail' }],
  ['no reply found: the lists decide', { reply: { kind: 'none' }, listed: 'black' }, { action: 'drop', why: 'blacklisted sender' }],
  ['a loop is held silently even when it is a reply', { loop: true, reply: { kind: 'reply', whitelist: true } }, { action: 'hold', why: 'mail loop', silent: 'mail loop' }],
  ['a loop is held silently whatever else is true', { loop: true, listed: 'white', tag: { kind: 'dated', valid: true } }, { action: 'hold', why: 'mail loop', silent: 'mail loop' }],
];

for (const [what, facts, verdict] of table) {
  test(`decide: ${what}`, (t) => {
    t.deepEqual(decide({ ...base, ...facts }), verdict);
  });
}

// When the delivery looks replies up at all: only where step 3 can change the decision.
const needs: [string, Partial<Facts>, boolean][] = [
  ['an unknown sender', {}, true],
  ['a blacklisted sender', { listed: 'black' }, true],
  ['a whitelisted sender (delivered anyway)', { listed: 'white' }, false],
  ['a loop', { loop: true }, false],
  ['a valid tag', { tag: { kind: 'sender', valid: true } }, false],
  ['an invalid tag (the bare address)', { tag: { kind: 'dated', valid: false } }, true],
  ['a live confirm', { tag: { kind: 'confirm', state: 'live', heldId: 'abcdefghijklm' } }, false],
  ['a live confirm from a blacklisted sender', { tag: { kind: 'confirm', state: 'live', heldId: 'abcdefghijklm' }, listed: 'black' }, true],
  ['a spent confirm', { tag: { kind: 'confirm', state: 'spent' } }, true],
  ['a malformed confirm', { tag: { kind: 'malformed' } }, false],
];
for (const [what, facts, want] of needs) {
  test(`needsReplyFact: ${what} → ${want}`, (t) => {
    t.is(needsReplyFact({ ...base, ...facts }), want);
  });
}
