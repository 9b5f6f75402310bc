// No input may make a delivery slow: every parse of sender-controlled text is linear or bounded.
// Work is counted, not timed: firstAddress counts the characters it looks at, cleanText reads only a
// bounded start of a value; and whole deliveries of the worst headers we know, at header_limit,
// run in a worker that is ended past a generous bound (the only clock here, and far from the work).

import test from 'ava';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { cleanInput, cleanText, firstAddress, type Meter } from '../agent/mail/header.js';
import { makeHome, qmailEnv } from './helpers.js';

/** What firstAddress did as two regular expressions (the specification of its answers). */
function firstAddressByRegex(value: string): string | undefined {
  const angle = /<([^<>\s]+@[^<>\s]+)>/.exec(value);
  if (angle?.[1]) return angle[1];
  return /(?:^|[\s,:;])([^\s<>(),;:"]+@[^\s<>(),;:"]+)/.exec(value)?.[1];
}

/** Characters that matter to an address scan, and some that do not. */
const ADDRESS_CHARS = fc.constantFrom('<', '>', '@', ' ', '\t', ',', ':', ';', '"', '(', ')', 'a', 'b', '.', '-', '\u00a0', '\u3000', 'é', '=', '?');
const addressText = (maxLength: number) => fc.string({ unit: ADDRESS_CHARS, maxLength });

/** A From: value's worst shapes, made `n` characters long. */
function worstFroms(n: number): Record<string, string> {
  const rep = (s: string) => s.repeat(Math.ceil(n / s.length)).slice(0, n);
  return {
    'an open < and then a@ again and again': `<${rep('a@')}`,
    'a@ again and again, no separator': rep('a@'),
    '< again and again': rep('<'),
    '<a@ again and again': rep('<a@'),
    'a@b> again and again': rep('a@b>'),
    ', then a@ again and again': `,${rep('a@')}`,
    'separators between @s': rep(',@'),
    'a long local part with no @': rep('a'),
    'tag-shaped': rep('alice-sender-abcdefghijklmnop@'),
  };
}

test('firstAddress answers as the two regular expressions it replaces did', (t) => {
  fc.assert(fc.property(addressText(80), (v) => firstAddress(v) === firstAddressByRegex(v)), { numRuns: 20_000 });
  for (const v of ['"Bob" <bob@example.com>', 'bob@example.com', 'Bob <bob@x>, carol@y', '<@x> a@b', 'x:a@b', '<a@>b@c', '(a@b)', '"a@b"']) {
    t.is(firstAddress(v), firstAddressByRegex(v), v);
  }
});

test('firstAddress looks at each character at most three times, whatever the value', (t) => {
  fc.assert(
    fc.property(addressText(3000), (v) => {
      const m: Meter = { steps: 0 };
      firstAddress(v, m);
      return m.steps <= 3 * v.length + 3;
    }),
    { numRuns: 2000 },
  );
  // The worst shapes at header_limit (1 MB): a regular expression took 12 s for 120 KB of one.
  for (const [name, v] of Object.entries(worstFroms(1 << 20))) {
    const m: Meter = { steps: 0 };
    firstAddress(v, m);
    t.true(m.steps <= 3 * v.length + 3, `${name}: ${m.steps} steps for ${v.length} characters`);
  }
});

test('cleanText reads only a bounded start of a value, however long the value is', (t) => {
  const piece = fc.constantFrom('=?utf-8?q?caf=C3=A9?=', '=?iso-8859-1?b?Y2Fm6Q==?=', ' ', '\t', 'word', '=?', '?=', '\u2028', 'x');
  fc.assert(
    fc.property(fc.array(piece, { minLength: 0, maxLength: 400 }), fc.string({ maxLength: 200 }), fc.integer({ min: 1, max: 300 }), (parts, tail, max) => {
      const v = parts.join('');
      const head = v.length >= cleanInput(max) ? v.slice(0, cleanInput(max)) : undefined;
      // Whatever follows the first cleanInput(max) characters does not change the result.
      return head === undefined || cleanText(v + tail, max) === cleanText(head, max);
    }),
    { numRuns: 2000 },
  );
  t.true(cleanInput(300) < 6000);
});

/** Delivers `raw` in a worker; ends it after `boundMs`. Resolves to the delivery's line, or
 * rejects when the bound is passed. */
function deliverWithin(home: string, env: NodeJS.ProcessEnv, raw: Buffer, boundMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./linear-worker.js', import.meta.url), { workerData: { home, env, raw: new Uint8Array(raw), now: Date.UTC(2026, 10, 23, 12) } });
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new Error(`still running after ${boundMs} ms`));
    }, boundMs);
    worker.once('message', (m: { ok: boolean; line: string }) => {
      clearTimeout(timer);
      void worker.terminate();
      if (m.ok) resolve(m.line);
      else reject(new Error(m.line));
    });
    worker.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

test('deliveries of the worst headers at header_limit, to a tag-shaped address, each end well inside a generous bound', async (t) => {
  t.timeout(10 * 60_000);
  const home = await makeHome({ config: { challenge: { enabled: false, authserv_ids: ['mx.example.org'] } } });
  const n = (1 << 20) - 4096; // the header block stays within header_limit (1 MB)
  const rep = (s: string) => s.repeat(Math.ceil(n / s.length)).slice(0, n);
  const cases: Record<string, string> = {};
  for (const [name, from] of Object.entries(worstFroms(n))) cases[`From: ${name}`] = `From: ${from}\nSubject: hi\n`;
  Object.assign(cases, {
    'Subject: encoded words again and again': `From: bob@example.com\nSubject: ${rep('=?utf-8?q?caf=C3=A9?= ')}\n`,
    'Subject: an encoded word that never ends': `From: bob@example.com\nSubject: =?${rep('x')}\n`,
    'Subject: one long line of folds': `From: bob@example.com\nSubject: x${rep('\n y')}\n`,
    'Authentication-Results: dmarc and white space again and again': `From: bob@example.com\nAuthentication-Results: mx.example.org; ${rep('dmarc  =  ')}\n`,
    'X-Spam-Flag: white space, then no': `From: bob@example.com\nX-Spam-Flag: ${rep(' ')}no\n`,
    'Received-SPF: white space again and again': `From: bob@example.com\nReceived-SPF: ${rep(' \t')}pass\n`,
    'a hundred thousand short fields': `From: bob@example.com\n${'X-A: 1\n'.repeat(Math.floor(n / 7))}`,
  });
  for (const [name, head] of Object.entries(cases)) {
    const raw = Buffer.from(`${head}\nHello.\n`);
    // The only clock in this file: a bound some hundred times what the work takes, which a
    // quadratic parse (minutes for 1 MB) cannot meet on any machine.
    const line = await deliverWithin(home.dir, qmailEnv(home, 'bob@example.com', 'sender-abcdefghijklmnop'), raw, 60_000).catch((err: Error) => `FAILED: ${err.message}`);
    t.regex(line, /^vouch: held /, name);
  }
});
