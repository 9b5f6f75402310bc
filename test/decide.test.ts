// The decision order of DESIGN.md as a table of facts → verdict.
import test from 'ava';
import { decide, type Facts, type TagFact, type Verdict } from '../agent/policy/decide.js';

const none: TagFact = { kind: 'none' };
const base: Facts = { loop: false, tag: none, listed: undefined, blacklistAction: 'drop' };

const table: [string, Partial<Facts>, Verdict][] = [
  ['an unknown sender is held, a challenge allowed', {}, { action: 'hold', why: 'unknown sender', silent: undefined }],
  ['a whitelisted sender is delivered', { listed: 'white' }, { action: 'deliver', why: 'whitelisted sender' }],
  ['a blacklisted sender is dropped', { listed: 'black' }, { action: 'drop', why: 'blacklisted sender' }],
  ['a blacklisted sender goes to junk when configured', { listed: 'black', blacklistAction: 'junk' }, { action: 'junk', why: 'blacklisted sender' }],
  ['a valid confirm releases', { tag: { kind: 'confirm', heldId: 'abcdefghijklm' } }, { action: 'confirm', heldId: 'abcdefghijklm', why: 'confirmation reply' }],
  ['an invalid, used or foreign confirm is dropped', { tag: { kind: 'confirm', heldId: undefined } }, { action: 'drop', why: 'invalid or used confirmation address' }],
  ['an invalid confirm is dropped even from a whitelisted sender', { tag: { kind: 'confirm', heldId: undefined }, listed: 'white' }, { action: 'drop', why: 'invalid or used confirmation address' }],
  ['a valid confirm wins over the blacklist', { tag: { kind: 'confirm', heldId: 'abcdefghijklm' }, listed: 'black' }, { action: 'confirm', heldId: 'abcdefghijklm', why: 'confirmation reply' }],
  ['a confirm refused for a reason says the reason', { tag: { kind: 'confirm', heldId: undefined, refused: 'automatic reply' } }, { action: 'drop', why: 'confirmation refused: automatic reply' }],
  ['a valid dated address delivers', { tag: { kind: 'dated', valid: true } }, { action: 'deliver', why: 'valid dated address' }],
  ['a valid sender address delivers', { tag: { kind: 'sender', valid: true } }, { action: 'deliver', why: 'valid sender address' }],
  ['a valid keyword address delivers', { tag: { kind: 'keyword', valid: true } }, { action: 'deliver', why: 'valid keyword address' }],
  ['a valid tag wins over the blacklist', { tag: { kind: 'keyword', valid: true }, listed: 'black' }, { action: 'deliver', why: 'valid keyword address' }],
  ['an expired dated address is bare: held', { tag: { kind: 'dated', valid: false } }, { action: 'hold', why: 'unknown sender', silent: undefined }],
  ['an invalid tag is bare: the whitelist still applies', { tag: { kind: 'sender', valid: false }, listed: 'white' }, { action: 'deliver', why: 'whitelisted sender' }],
  ['an invalid tag is bare: the blacklist still applies', { tag: { kind: 'keyword', valid: false }, listed: 'black' }, { action: 'drop', why: 'blacklisted sender' }],
  ['a loop is held silently whatever else is true', { loop: true, listed: 'white', tag: { kind: 'dated', valid: true } }, { action: 'hold', why: 'mail loop', silent: 'mail loop' }],
];

for (const [what, facts, verdict] of table) {
  test(`decide: ${what}`, (t) => {
    t.deepEqual(decide({ ...base, ...facts }), verdict);
  });
}
