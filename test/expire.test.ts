// `vouch expire` (run from cron): held mail past pending.lifetime goes, nobody is written to, and a
// confirm for expired mail no longer works.
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { deliverQmail, makeHome, maildirFiles, message, pendingList, setConfig, vouch } from './helpers.js';
import { confirmExt, fakeSendmail, reply } from './fake-sendmail.js';

test('vouch expire removes held mail past its lifetime and never runs sendmail', async (t) => {
  const h = await makeHome({ config: { pending: { lifetime: '1s' } } });
  const sm = fakeSendmail(h);
  await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net' }));
  await deliverQmail(h, '', message({ from: 'MAILER-DAEMON@mx.example' }));
  t.is((await pendingList(h)).length, 2);
  t.is(sm.sent().length, 1);
  const ext = await confirmExt(sm.sent()[0]?.raw ?? Buffer.alloc(0));
  await sleep(1100);
  const r = await vouch(['expire'], { env: h.env });
  t.is(r.code, 0);
  // The challenged message expired unanswered: the classifier learns it as spam; the bounce, held
  // silently, teaches nothing.
  t.regex(r.stdout, /^2 expired\nlearning queue: 0 ham, 1 spam learned \([\d.]+ s\)\n$/);
  t.deepEqual(await pendingList(h), []);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is(sm.sent().length, 1, 'expire wrote to nobody');
  // The challenge for the expired message is dead now: the address is the bare one, so the late
  // reply is held like any mail from an unknown sender (within the rate window: no new request).
  const late = await deliverQmail(h, 'carol@example.net', reply({ from: 'carol@example.net', to: 'x' }), ext);
  t.is(late.code, 99);
  t.regex(late.stdout, /held [a-z2-7]{13}: unknown sender carol@example.net; challenge suppressed \(sender already challenged recently\)/);
  t.deepEqual(maildirFiles(h.maildir), []);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '');
  t.is(sm.sent().length, 1);
});

test('vouch expire keeps held mail that is still within its lifetime', async (t) => {
  const h = await makeHome();
  const sm = fakeSendmail(h);
  await deliverQmail(h, 'carol@example.net', message({ from: 'carol@example.net' }));
  const r = await vouch(['expire'], { env: h.env });
  t.is(r.stdout, '0 expired\n');
  t.is((await pendingList(h)).length, 1);
  t.is(sm.sent().length, 1);
});

test('vouch expire runs even when the sendmail program is broken (it never needs it)', async (t) => {
  const h = await makeHome({ config: { pending: { lifetime: '1s' } } });
  setConfig(h.dir, { challenge: { enabled: false }, send: { sendmail: '/nonexistent/sendmail' } });
  await deliverQmail(h, 'carol@example.net', message());
  await sleep(1100);
  const r = await vouch(['expire'], { env: h.env });
  t.is(r.code, 0);
  t.is(r.stdout, '1 expired\n');
});
