// The challenge composer (agent/challenge/mime.ts): exact bytes for the plain case, and everything else read
// back with mailparser, the parser a recipient's software is most like.
import test from 'ava';
import fc from 'fast-check';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import { composeText, type PlainMail } from '../agent/challenge/mime.js';

const SELF = 'alice-confirm-abcdefghijklm.r7tw625zwcmfxs3l@example.org';

function mail(over: Partial<PlainMail> = {}): PlainMail {
  return {
    from: SELF,
    replyTo: SELF,
    to: 'bob@example.com',
    subject: 'Please confirm your message: Lunch?',
    date: new Date(Date.UTC(2026, 10, 23, 10, 0, 0)),
    messageId: '<mwt7reo0.a06bbf8a7f4d63aaa2@example.org>',
    text: 'Hello,\n\njust reply to this message.\n',
    ...over,
  };
}

function parse(raw: Buffer): Promise<ParsedMail> {
  return simpleParser(raw, { skipHtmlToText: true, skipTextToHtml: true, skipTextLinks: true });
}

function head(raw: Buffer): string {
  return raw.subarray(0, raw.indexOf('\n\n')).toString('latin1');
}

function body(raw: Buffer): string {
  return raw.subarray(raw.indexOf('\n\n') + 2).toString('latin1');
}

/** The lines of one field: its first and the continuation lines after it. */
function fieldLines(raw: Buffer, name: string): string[] {
  const lines = head(raw).split('\n');
  const at = lines.findIndex((l) => l.startsWith(`${name}: `));
  const end = lines.findIndex((l, i) => i > at && !l.startsWith(' '));
  return lines.slice(at, end === -1 ? undefined : end);
}

function mailbox(a: AddressObject | AddressObject[] | undefined): { address: string; name: string }[] {
  return (Array.isArray(a) ? a : a ? [a] : []).flatMap((o) => o.value.map((v) => ({ address: v.address ?? '', name: v.name })));
}

const FIELDS = ['content-transfer-encoding', 'content-type', 'date', 'from', 'message-id', 'mime-version', 'reply-to', 'subject', 'to'];

test('a plain ASCII message comes out exactly as expected, with LF line ends', (t) => {
  const raw = composeText(mail({
    from: { name: 'Alice Liddell', address: SELF },
    replyTo: { name: 'Alice Liddell', address: SELF },
    inReplyTo: '<orig.1@example.com>',
    references: '<orig.1@example.com>',
    headers: [['Auto-Submitted', 'auto-replied'], ['X-Auto-Response-Suppress', 'All']],
  }));
  t.is(raw.toString('utf8'), [
    'Date: Mon, 23 Nov 2026 10:00:00 +0000',
    'Message-ID: <mwt7reo0.a06bbf8a7f4d63aaa2@example.org>',
    `From: Alice Liddell <${SELF}>`,
    // 80 characters on one line: folded before the address.
    'Reply-To: Alice Liddell',
    ` <${SELF}>`,
    'To: bob@example.com',
    'Subject: Please confirm your message: Lunch?',
    'In-Reply-To: <orig.1@example.com>',
    'References: <orig.1@example.com>',
    'Auto-Submitted: auto-replied',
    'X-Auto-Response-Suppress: All',
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: 7bit',
    '',
    'Hello,',
    '',
    'just reply to this message.',
    '',
  ].join('\n'));
});

test('a bare address and a missing In-Reply-To give only the fields asked for, and the body gains its last line end', async (t) => {
  const raw = composeText(mail({ text: 'no newline at the end' }));
  const m = await parse(raw);
  t.deepEqual([...m.headers.keys()].sort(), FIELDS);
  t.deepEqual(mailbox(m.from), [{ address: SELF, name: '' }]);
  t.regex(head(raw), new RegExp(`^From: ${SELF}$`, 'm'));
  t.is(body(raw), 'no newline at the end\n');
  t.is(m.date?.getTime(), Date.UTC(2026, 10, 23, 10, 0, 0));
});

test('non-ASCII subjects and display names are encoded-words that decode back exactly', async (t) => {
  for (const text of ['Grüße aus Köln — 日本', '日本語のメール', 'Zoë', 'emoji 🎉🎉 and ASCII', ' leading and trailing ü ', 'Ünïcödé'.repeat(20)]) {
    const raw = composeText(mail({ subject: `Re: ${text}`, from: { name: text, address: SELF }, replyTo: { name: text, address: SELF } }));
    const h = head(raw);
    t.false(/[^\x20-\x7e\n]/.test(h), 'the header is printable ASCII');
    t.regex(h, /^Subject: =\?UTF-8\?[QB]\?/m);
    for (const word of h.match(/=\?[^?]+\?[QB]\?[^?]*\?=/g) ?? []) t.true(word.length <= 75, word);
    for (const line of h.split('\n')) t.true(line.length <= 78, line);
    const m = await parse(raw);
    t.is(m.subject, `Re: ${text}`.trim());
    t.deepEqual(mailbox(m.from), [{ address: SELF, name: text.trim() }]);
    t.deepEqual(mailbox(m.replyTo), [{ address: SELF, name: text.trim() }]);
  }
});

test('an encoded-word never splits a UTF-8 sequence: each one decodes to whole characters on its own', (t) => {
  const raw = composeText(mail({ subject: '€𝄞ü'.repeat(40) }));
  const words = head(raw).match(/=\?UTF-8\?([QB])\?([^?]*)\?=/g) ?? [];
  t.true(words.length > 3);
  for (const word of words) {
    const [, kind, payload = ''] = /^=\?UTF-8\?([QB])\?(.*)\?=$/.exec(word) ?? [];
    const bytes = kind === 'B' ? Buffer.from(payload, 'base64') : Buffer.from(payload.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/g, (_m, x: string) => String.fromCharCode(parseInt(x, 16))), 'latin1');
    t.false(new TextDecoder('utf-8', { fatal: false }).decode(bytes).includes('\ufffd'), word);
  }
});

test('names with quotes, commas, parentheses and angle brackets stay one display name of one mailbox', async (t) => {
  for (const name of ['Al "x" <evil@x.org>, bob@y.org; z', 'Liddell, Alice (work)', 'back\\slash "quoted"', 'A. Liddell', 'x@y.org', '=?utf-8?q?not_encoded?=']) {
    const raw = composeText(mail({ from: { name, address: SELF }, replyTo: { name, address: SELF } }));
    const m = await parse(raw);
    t.deepEqual(mailbox(m.from), [{ address: SELF, name }], name);
    t.deepEqual(mailbox(m.replyTo), [{ address: SELF, name }], name);
  }
  t.regex(head(composeText(mail({ from: { name: 'Liddell, Alice (work)', address: SELF } }))), /^From: "Liddell, Alice \(work\)"/m);
});

test('a subject that looks like an encoded-word is encoded, so it reads back literally', async (t) => {
  const subject = 'see =?utf-8?q?hidden?= here';
  t.is((await parse(composeText(mail({ subject })))).subject, subject);
});

test('a 300-character subject is folded at spaces into lines of at most 78 and parses back identical', async (t) => {
  const words = Array.from({ length: 59 }, (_v, i) => `w${String(i).padStart(3, '0')}`);
  const subject = `${words.join(' ')} final`;
  t.is(subject.length, 300);
  const raw = composeText(mail({ subject }));
  const folded = fieldLines(raw, 'Subject');
  t.true(folded.length >= 4);
  for (const line of folded) t.true(line.length <= 78, line);
  t.is(folded.join('\n').replace(/\n/g, ''), `Subject: ${subject}`, 'unfolding gives the subject back exactly');
  t.is((await parse(raw)).subject, subject);
});

test('a word too long for any line is encoded rather than left over 998 characters', async (t) => {
  for (const subject of [`long ${'x'.repeat(1500)} word`, 'y'.repeat(3000)]) {
    const raw = composeText(mail({ subject, from: { name: 'n'.repeat(1200), address: SELF } }));
    for (const line of head(raw).split('\n')) t.true(line.length <= 78, line.slice(0, 40));
    const m = await parse(raw);
    t.is(m.subject, subject);
    t.is(mailbox(m.from)[0]?.name, 'n'.repeat(1200));
  }
});

test('a body with non-ASCII and a 2,000-character line is quoted-printable, lines within 76, and decodes back identical', async (t) => {
  const text = `Grüße, Zoë!\n${'ab= '.repeat(500)}\ntrailing space \nand tab\t\n日本語 ${'é'.repeat(100)}\n.\nend\n`;
  const raw = composeText(mail({ text }));
  t.regex(head(raw), /^Content-Transfer-Encoding: quoted-printable$/m);
  const b = body(raw);
  t.false(/[^\x20-\x7e\n]/.test(b), 'the body is printable ASCII');
  for (const line of b.split('\n')) {
    t.true(line.length <= 76, line);
    t.false(/[ \t]$/.test(line), 'no line ends in white space');
  }
  t.is((await parse(raw)).text, text);
});

test('an ASCII body with a line over 998 octets is quoted-printable too', async (t) => {
  const text = `${'z'.repeat(999)}\n`;
  const raw = composeText(mail({ text }));
  t.regex(head(raw), /^Content-Transfer-Encoding: quoted-printable$/m);
  t.is((await parse(raw)).text, text);
  t.regex(head(composeText(mail({ text: `${'z'.repeat(998)}\n` }))), /^Content-Transfer-Encoding: 7bit$/m);
});

test('CR, LF and other control characters in any header value cannot add a header', async (t) => {
  const raw = composeText(mail({
    subject: 'hi\r\nBcc: subject@evil.example\r\n\r\nbody',
    from: { name: 'Alice\r\nBcc: name@evil.example', address: SELF },
    replyTo: { name: 'Alice\nBcc: reply@evil.example\u2028X-Sep: 1', address: SELF },
    messageId: '<a@b>\r\nBcc: id@evil.example',
    inReplyTo: '<c@d>\nX-Injected: yes',
    headers: [['Auto-Submitted', 'auto-replied\r\nBcc: extra@evil.example'], ['X-Auto-Response-Suppress', 'All\u0085X-Nel: 1']],
    text: 'body\r\nBcc: in the body is only text\n',
  }));
  const m = await parse(raw);
  t.deepEqual([...m.headers.keys()].sort(), [...FIELDS, 'auto-submitted', 'in-reply-to', 'x-auto-response-suppress'].sort());
  t.false(/\n(Bcc|X-Injected|X-Sep|X-Nel):/.test(head(raw)));
  t.false(raw.includes('\r'));
  t.is(m.subject, 'hi Bcc: subject@evil.example body');
  t.deepEqual(mailbox(m.from), [{ address: SELF, name: 'Alice Bcc: name@evil.example' }]);
  t.is(m.headers.get('auto-submitted'), 'auto-replied Bcc: extra@evil.example');
});

test('an address that is not plain, or a field name that is not one, is refused rather than written', (t) => {
  for (const to of ['bob@example.com, evil@example.net', 'Bob <bob@example.com>', 'bob@example.com\r\nBcc: x@y', '']) {
    t.throws(() => composeText(mail({ to })), { instanceOf: TypeError }, to);
  }
  t.throws(() => composeText(mail({ from: { name: 'x', address: 'a b@example.org' } })), { instanceOf: TypeError });
  t.throws(() => composeText(mail({ headers: [['Bcc: x\nX', 'y']] })), { instanceOf: TypeError });
  t.throws(() => composeText(mail({ date: new Date(Number.NaN) })), { instanceOf: RangeError });
});

test('fast-check: any subject and display name decode back as given, folded within 78 wherever a space allows', async (t) => {
  const text = fc.string({ unit: fc.oneof(fc.constantFrom(' ', '"', '\\', ',', '(', '=', '?', '_'), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 1 })), maxLength: 120 })
    .map((s) => s.replace(/\s+/g, ' ').trim())
    .filter((s) => s !== '');
  await fc.assert(
    fc.asyncProperty(text, text, async (subject, name) => {
      const raw = composeText(mail({ subject, from: { name, address: SELF } }));
      // Over 78 only where the line is one word that no space could break.
      for (const line of head(raw).split('\n')) if (line.length > 78 && / ./.test(line.replace(/^[\w-]+: /, '').trimStart())) return false;
      const m = await parse(raw);
      return m.subject === subject && mailbox(m.from)[0]?.name === name;
    }),
    { numRuns: 300 },
  );
  t.pass();
});
