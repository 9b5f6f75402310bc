// The auth bundle's stand-in for the two Joi schemas mailauth builds (agent/auth/joi-subset.ts)
// answers as Joi does: a table of edge cases and random strings, each against the real Joi.

import test from 'ava';
import fc from 'fast-check';
import Joi from 'joi';
import { string } from '../agent/auth/joi-subset.js';

const realB64 = Joi.string().base64({ paddingRequired: false });
const realDomain = Joi.string().domain({ allowUnicode: false, tlds: false });
const mineB64 = string().base64({ paddingRequired: false });
const mineDomain = string().domain({ allowUnicode: false, tlds: false });

const same = (v: unknown) => ({
  b64: [realB64.validate(v).error === undefined, mineB64.validate(v).error === undefined],
  domain: [realDomain.validate(v).error === undefined, mineDomain.validate(v).error === undefined],
});

test('the stand-in validates base64 and domain names exactly as Joi does, on edge cases', (t) => {
  const cases: unknown[] = [
    '', 'a', 'ab', 'abc', 'abcd', 'abcde', 'ab==', 'abc=', 'abcd==', 'abc==', 'a===', 'ab=', '+/+/', 'ab cd', 'MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA',
    'example.com', 'a.b', 'a', 'a.b.', '.a.b', 'a..b', '-a.b', 'a-.b', 'a.1b', 'a.b1', '1.2.3.4', 'xn--bcher-kva.example', 'a_b.example', 'ex ample.com',
    `${'a'.repeat(63)}.com`, `${'a'.repeat(64)}.com`, `${'a.'.repeat(128)}com`, 'bücher.example', 'a.b-', 'a.b-c', 5, null, undefined,
  ];
  for (const v of cases) {
    const s = same(v);
    t.is(s.b64[1], s.b64[0], `base64 ${String(v)}`);
    t.is(s.domain[1], s.domain[0], `domain ${String(v)}`);
  }
});

test('the stand-in agrees with Joi on random strings', (t) => {
  const alphabet = fc.constantFrom(...'abcXYZ019-_.+/= @ü'.split(''));
  fc.assert(
    fc.property(fc.string({ unit: alphabet, maxLength: 40 }), (v) => {
      const s = same(v);
      return s.b64[0] === s.b64[1] && s.domain[0] === s.domain[1];
    }),
    { numRuns: 3000 },
  );
  t.pass();
});
