// What the held path's checks load and read, made smaller for speed (bench P2A) without changing an
// answer: dkimVerify sees only the header block of an unsigned message, and the auth bundle's
// public suffix list (tldts, scripts/lazy-suffixes.js) is made one top-level label at a time.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { runInThisContext } from 'node:vm';
import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { getDomain } from 'tldts';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { dkimSign } from 'mailauth/lib/dkim/sign.js';
import { dkimInput } from '../agent/auth/check.js';
import { ROOT } from './helpers.js';

const AUTH = join(ROOT, 'dist', 'agent', 'cli', 'auth.bundle.cjs');

/** The auth bundle's exports, run as launch.cjs runs it (without its code cache). */
function authBundle(): { orgDomain(domain: string): string } {
  const source = readFileSync(AUTH, 'utf8');
  const body = runInThisContext(`(function (exports, require, module, __filename, __dirname, __vouchImport, __vouchMeta) {${source}\n})`, { filename: AUTH }) as (
    ...args: unknown[]
  ) => void;
  const module = { exports: {} };
  body(module.exports, createRequire(AUTH), module, AUTH, join(AUTH, '..'), () => Promise.reject(new Error('no import here')), { url: `file://${AUTH}` });
  return module.exports as { orgDomain(domain: string): string };
}

const unsigned = Buffer.from('From: Bob <bob@example.com>\nTo: alice@example.org\nSubject: hi\n\nline one\nline two\n');

test('dkimInput: an unsigned message is cut to its header block, blank line included', (t) => {
  t.is(dkimInput(unsigned).toString(), 'From: Bob <bob@example.com>\nTo: alice@example.org\nSubject: hi\n\n');
  const crlf = Buffer.from('From: bob@example.com\r\nSubject: hi\r\n\r\nbody\r\n');
  t.is(dkimInput(crlf).toString(), 'From: bob@example.com\r\nSubject: hi\r\n\r\n');
});

test('dkimInput: a DKIM signature or any ARC field keeps the whole message', (t) => {
  for (const field of ['DKIM-Signature: v=1; d=example.com', 'dkim-signature:v=1', 'ARC-Seal: i=1', 'ARC-Message-Signature: i=1', 'Arc-Authentication-Results: i=1']) {
    const m = Buffer.from(`From: bob@example.com\n${field}\nSubject: hi\n\nbody\n`);
    t.is(dkimInput(m), m, field);
  }
  // Only a field's name counts, not a folded line or the body.
  const folded = Buffer.from('From: bob@example.com\nSubject: about\n DKIM-Signature\n\nDKIM-Signature: not a field\n');
  t.is(dkimInput(folded).toString(), 'From: bob@example.com\nSubject: about\n DKIM-Signature\n\n');
});

test('dkimInput: a message without a body or without a header block is passed whole', (t) => {
  const noBody = Buffer.from('From: bob@example.com\nSubject: hi\n');
  t.is(dkimInput(noBody), noBody);
  const noHeader = Buffer.from('\nbody only\n');
  t.is(dkimInput(noHeader).toString(), '\n');
});

test('mailauth gives the same DKIM answer for an unsigned message and its header block', async (t) => {
  const resolver = () => Promise.reject(Object.assign(new Error('no DNS here'), { code: 'ENOTFOUND' }));
  for (const m of [unsigned, Buffer.from(`From: "A, B" <a@example.com>, c@example.net\nSubject: x\n\n${'word '.repeat(5000)}\n`)]) {
    const whole = await dkimVerify(m, { resolver } as unknown as Parameters<typeof dkimVerify>[1]);
    const cut = await dkimVerify(dkimInput(m), { resolver } as unknown as Parameters<typeof dkimVerify>[1]);
    t.deepEqual(cut, whole);
    t.deepEqual((cut as { arc?: unknown }).arc, (whole as { arc?: unknown }).arc);
  }
});

test('a DKIM-signed message is still verified on its body: a changed body fails', async (t) => {
  const keys = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const pub = keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
  const priv = keys.privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  const signed = await dkimSign(unsigned, { signatureData: [{ signingDomain: 'example.com', selector: 's', privateKey: priv }] } as unknown as Parameters<typeof dkimSign>[1]);
  const m = Buffer.concat([Buffer.from(signed.signatures), unsigned]);
  const resolver = (name: string) => (name === 's._domainkey.example.com' ? Promise.resolve([[`v=DKIM1; k=rsa; p=${pub}`]]) : Promise.reject(Object.assign(new Error('none'), { code: 'ENOTFOUND' })));
  const opts = { resolver } as unknown as Parameters<typeof dkimVerify>[1];
  const good = await dkimVerify(dkimInput(m), opts);
  t.is(good.results?.[0]?.status?.result, 'pass');
  const tampered = Buffer.from(m.toString().replace('line two', 'line 2'));
  const bad = await dkimVerify(dkimInput(tampered), opts);
  t.is(bad.results?.[0]?.status?.result, 'neutral');
});

// The build compares every rule of the list both ways (scripts/lazy-suffixes.js); here the built
// bundle itself, on the kinds of rule that differ in shape: plain, two-level, wildcard, exception,
// private, internationalised, and names under no rule.
const SUFFIXES = ['com', 'co.uk', 'kawasaki.jp', 'city.kawasaki.jp', 'ck', 'www.ck', 'github.io', 'futurecms.at', 'ex.futurecms.at', 's3.amazonaws.com', 'xn--55qx5d.cn', '公司.cn', 'рус', 'no-such-tld', 'example'];

test('the auth bundle finds the same organisational domains as tldts itself', (t) => {
  const bundle = authBundle();
  const same = (d: string) => t.is(bundle.orgDomain(d), getDomain(d, { allowPrivateDomains: true }) ?? d.toLowerCase().replace(/\.$/, ''), d);
  for (const s of SUFFIXES) for (const pre of ['', 'x.', 'a.x.', 'www.a.x.']) same(`${pre}${s}`);
  fc.assert(
    fc.property(fc.array(fc.constantFrom('a', 'www', 'mail', 'x-y', '1', 'ex', 'city', 'city2'), { maxLength: 3 }), fc.constantFrom(...SUFFIXES), (labels, s) => {
      const d = [...labels, s].join('.');
      return bundle.orgDomain(d) === (getDomain(d, { allowPrivateDomains: true }) ?? d);
    }),
  );
});
