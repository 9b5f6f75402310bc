// `vouch digest`: one multipart/alternative mail about what was held since the last digest, every
// value escaped in the HTML, never any body text; silent when nothing is new; and delivered, not
// held, when it comes back to the user's own address.
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deliverQmail, makeHome, maildirFiles, message, pendingList, setConfig, vouch, type TestHome } from './helpers.js';
import { parseMail } from './fake-sendmail.js';

async function home(): Promise<TestHome> {
  const h = await makeHome({ config: { challenge: { enabled: false }, send: { transport: 'file' } } });
  setConfig(h.dir, { web: { url: 'https://vouch.example.org/review' } });
  return h;
}

function outbox(h: TestHome): { eml: Buffer; envelope: { from: string; to: string[] } }[] {
  const dir = join(h.dir, 'outbox');
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => n.endsWith('.eml')).sort();
  } catch {
    return [];
  }
  return names.map((n) => ({
    eml: readFileSync(join(dir, n)),
    envelope: JSON.parse(readFileSync(join(dir, n.replace(/\.eml$/, '.envelope.json')), 'utf8')) as { from: string; to: string[] },
  }));
}

const HOSTILE_SUBJECT = '<script>alert("x")</script> & <b>bold</b>';

test('the digest lists what was held (both parts), escapes every value in the HTML, and never carries body text', async (t) => {
  const h = await home();
  await deliverQmail(h, 'carol@example.net', message({ from: 'Carol <carol@example.net>', subject: 'Quarterly numbers', body: 'SECRET BODY TEXT\n' }));
  await deliverQmail(h, 'mal@example.com', message({ from: '"<img src=x onerror=alert(1)>" <mal@example.com>', subject: HOSTILE_SUBJECT, body: 'SECRET BODY TEXT\n' }));
  const held = await pendingList(h);
  t.is(held.length, 2);
  const r = await vouch(['digest', '--verbose'], { env: h.env });
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, 'digest of 2 held message(s) sent to alice@example.org\n');
  const sent = outbox(h);
  t.is(sent.length, 1);
  t.deepEqual(sent[0]?.envelope, { from: '', to: ['alice@example.org'] });
  const raw = sent[0]?.eml ?? Buffer.alloc(0);
  t.false(raw.toString().includes('SECRET BODY'));
  t.regex(raw.toString(), /^Content-Type: multipart\/alternative;/m);
  t.regex(raw.toString(), /^Auto-Submitted: auto-generated\r?$/m);
  const mail = await parseMail(raw);
  t.is(mail.subject, 'vouch: 2 held messages, the newest from mal@example.com');
  t.is(mail.to && !Array.isArray(mail.to) ? mail.to.value[0]?.address : undefined, 'alice@example.org');
  const text = mail.text ?? '';
  t.regex(text, /2 messages held for alice@example\.org since the last digest/);
  t.regex(text, /Review them: https:\/\/vouch\.example\.org\/review\//);
  t.true(text.includes(`Subject:  ${HOSTILE_SUBJECT}`));
  t.true(text.includes('Subject:  Quarterly numbers'));
  t.regex(text, /Held: {5}unknown sender; no challenge \(challenges are turned off\)/);
  for (const m of held) t.true(text.includes(`https://vouch.example.org/review/message/${m.id}`));
  const html = typeof mail.html === 'string' ? mail.html : '';
  t.true(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;'));
  t.true(html.includes('&lt;img src&#x3D;x onerror&#x3D;alert(1)&gt;'));
  t.false(/<script|<img|<b>bold/i.test(html));
  t.true(html.includes('Quarterly numbers'));
});

test('nothing new held: no mail and no output; then only what was held since', async (t) => {
  const h = await home();
  const none = await vouch(['digest'], { env: h.env });
  t.is(none.code, 0);
  t.is(none.stdout + none.stderr, '');
  t.is(outbox(h).length, 0);
  await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net', subject: 'First' }));
  t.is((await vouch(['digest'], { env: h.env })).stdout, '');
  t.is(outbox(h).length, 1);
  const again = await vouch(['digest', '-v'], { env: h.env });
  t.is(again.stdout, 'nothing new held; no digest\n');
  t.is(outbox(h).length, 1);
  await deliverQmail(h, 'dave@example.net', message({ from: 'dave@example.net', subject: 'Second' }));
  await vouch(['digest'], { env: h.env });
  const second = await parseMail(outbox(h)[1]?.eml ?? Buffer.alloc(0));
  t.is(second.subject, 'vouch: 1 held message, the newest from dave@example.net');
  t.false((second.text ?? '').includes('First'));
});

test('the digest coming back to the user is delivered, never held; a look-alike is held', async (t) => {
  const h = await home();
  await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net', subject: 'Lunch' }));
  await vouch(['digest'], { env: h.env });
  const digest = outbox(h)[0]?.eml ?? Buffer.alloc(0);
  const r = await deliverQmail(h, '', digest);
  t.is(r.code, 99);
  t.regex(r.stdout, /delivered: vouch digest <>/);
  t.is(maildirFiles(h.maildir).length, 1);
  t.is((await pendingList(h)).length, 1);
  // The same mail with another Message-ID is not ours: held, silently (null sender).
  const fake = Buffer.from(digest.toString().replace(/^Message-ID: <[^>]+>/m, 'Message-ID: <digest.1.ff@example.org>'));
  t.regex(fake.toString(), /^Message-ID: <digest\.1\.ff@example\.org>\r?$/m);
  const f = await deliverQmail(h, '', fake);
  t.regex(f.stdout, /held .*challenge suppressed \(/);
  t.is(maildirFiles(h.maildir).length, 1);
});

test('a transport that fails: exit 1 with the reason, and the next digest names the same messages', async (t) => {
  const h = await home();
  setConfig(h.dir, { send: { transport: 'sendmail', sendmail: '/nonexistent/sendmail' } });
  await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net', subject: 'Lunch' }));
  const r = await vouch(['digest'], { env: h.env });
  t.is(r.code, 1);
  t.regex(r.stderr, /the digest was not sent \(ESENDMAIL\); the next run tries again/);
  setConfig(h.dir, { send: { transport: 'file' } });
  t.is((await vouch(['digest', '-v'], { env: h.env })).stdout, 'digest of 1 held message(s) sent to alice@example.org\n');
});

test('a message held while a digest is being made, even with an earlier time, is named by the next digest', async (t) => {
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { Store } = await import('../agent/store/store.js');
  const { holdInput } = await import('./helpers.js');
  const store = await Store.open(join(mkdtempSync(join(tmpdir(), 'vouch-digest-')), 'vouch.db'), { create: true });
  try {
    await store.hold(holdInput({ digest: 'a', received: 2000, subject: 'listed' }));
    const first = await store.undigested(200);
    t.deepEqual(first.held.map((h) => h.subject), ['listed']);
    // Held meanwhile, by a delivery that started before the digest read (an earlier time).
    await store.hold(holdInput({ digest: 'b', received: 1000, subject: 'late' }));
    t.is(await store.markDigested(first.upTo, 3000), 1);
    const next = await store.undigested(200);
    t.deepEqual(next.held.map((h) => h.subject), ['late']);
    t.is(next.total, 1);
  } finally {
    await store.close();
  }
});
