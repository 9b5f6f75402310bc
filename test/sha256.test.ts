// sha256.ts against node:crypto: the tags of every address vouch ever handed out depend on them.
import test from 'ava';
import fc from 'fast-check';
import { createHash, createHmac } from 'node:crypto';
import { constantTimeEqual, hmacSha256, sha256 } from '../agent/tags/sha256.js';

test('SHA-256 of the standard test vectors', (t) => {
  t.is(sha256([]).toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  t.is(sha256([Buffer.from('abc')]).toString('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  t.is(
    sha256([Buffer.from('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')]).toString('hex'),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  );
  t.is(sha256([Buffer.alloc(1_000_000, 'a')]).toString('hex'), 'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0');
});

test('SHA-256 agrees with node:crypto for any bytes split into any parts (property)', (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 6 }), (parts) => {
      const want = createHash('sha256');
      for (const p of parts) want.update(p);
      return sha256(parts).equals(want.digest());
    }),
    { numRuns: 500 },
  );
  // Every length around the block and padding boundaries.
  for (let n = 0; n <= 200; n++) {
    const b = Buffer.alloc(n, n & 0xff);
    if (!sha256([b]).equals(createHash('sha256').update(b).digest())) t.fail(`length ${n}`);
  }
  t.pass();
});

test('HMAC-SHA256 agrees with node:crypto for keys of every size (property), and RFC 4231 case 2', (t) => {
  t.is(hmacSha256(Buffer.from('Jefe'), [Buffer.from('what do ya want for nothing?')]).toString('hex'), '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843');
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 150 }), fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 4 }), (key, parts) => {
      const want = createHmac('sha256', key);
      for (const p of parts) want.update(p);
      return hmacSha256(key, parts).equals(want.digest());
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('the constant-time comparison says equal only for equal bytes of equal length', (t) => {
  t.true(constantTimeEqual(Buffer.from('abc'), Buffer.from('abc')));
  t.true(constantTimeEqual(Buffer.alloc(0), Buffer.alloc(0)));
  t.false(constantTimeEqual(Buffer.from('abc'), Buffer.from('abd')));
  t.false(constantTimeEqual(Buffer.from('abc'), Buffer.from('ab')));
  t.false(constantTimeEqual(Buffer.from('\x00bc'), Buffer.from('\x01bc')));
});
