// A list entry made from mail (release + whitelist, delete + blacklist) is the exact address the
// mail came from, whatever characters it holds; only what the user types is a pattern.
import test from 'ava';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { exactPattern, lookupKeys, senderKeyOf } from '../agent/mail/address.js';
import { deliverQmail, makeHome, message, pendingList, vouch, type TestHome } from './helpers.js';

/** Holds one message from `sender` and returns its id. */
async function held(h: TestHome, sender: string, subject = 'Hello'): Promise<string> {
  const r = await deliverQmail(h, sender, message({ from: 'Someone <someone@example.net>', subject }));
  const id = /held ([a-z2-7]{13})/.exec(r.stdout)?.[1];
  if (id === undefined) throw new Error(`not held: ${r.stdout}`);
  return id;
}

test('delete + blacklist of a sender *@gmail.example blacklists that address, not all of gmail.example', async (t) => {
  const h = await makeHome();
  const id = await held(h, '*@gmail.example');
  t.is((await vouch(['pending', 'delete', id, '--blacklist'], { env: h.env })).code, 0);
  t.is((await vouch(['blacklist', 'list'], { env: h.env })).stdout, '*@gmail.example\n');
  // A friend at gmail.example is not dropped: held as any unknown sender.
  t.regex((await deliverQmail(h, 'friend@gmail.example', message({ from: 'friend@gmail.example' }))).stdout, /held .*unknown sender friend@gmail.example/);
  // The blacklisted sender itself is dropped.
  t.regex((await deliverQmail(h, '*@gmail.example', message({ subject: 'again' }))).stdout, /dropped: blacklisted sender \*@gmail.example/);
});

test('release + whitelist of a sender x-default@lists.example whitelists that address, not every x- sender', async (t) => {
  const h = await makeHome();
  const id = await held(h, 'x-default@lists.example');
  t.is((await vouch(['pending', 'release', id, '--whitelist'], { env: h.env })).code, 0);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, 'x-default@lists.example\n');
  t.regex((await deliverQmail(h, 'x-anyone@lists.example', message({ from: 'x-anyone@lists.example' }))).stdout, /held .*unknown sender/);
  t.regex((await deliverQmail(h, 'x-default@lists.example', message({ subject: 'again' }))).stdout, /delivered: whitelisted sender x-default@lists.example/);
});

test('a sender that is no plain address is listed exactly and found again, through the lists map and the store', async (t) => {
  const h = await makeHome();
  const odd = 'Bob Smith@Example.com';
  const id = await held(h, odd);
  t.regex((await pendingList(h))[0]?.sender ?? '', /Bob Smith/);
  t.is((await vouch(['pending', 'delete', id, '--blacklist'], { env: h.env })).code, 0);
  t.is((await vouch(['blacklist', 'list'], { env: h.env })).stdout, 'bob smith@example.com\n');
  t.regex((await deliverQmail(h, odd, message({ subject: 'map' }))).stdout, /dropped: blacklisted sender/);
  rmSync(join(h.dir, 'lists.map'));
  t.regex((await deliverQmail(h, odd, message({ subject: 'store' }))).stdout, /dropped: blacklisted sender/);
  // Nobody else at example.com is touched.
  t.regex((await deliverQmail(h, 'bob@example.com', message())).stdout, /held .*unknown sender bob@example.com/);
});

test('an exact entry made from mail can be removed by the text the list shows', async (t) => {
  const h = await makeHome();
  const id = await held(h, '*@gmail.example');
  t.is((await vouch(['pending', 'release', id, '--whitelist'], { env: h.env })).code, 0);
  t.is((await vouch(['whitelist', 'add', '@other.example'], { env: h.env })).code, 0);
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '*@gmail.example\n@other.example\n');
  const r = await vouch(['whitelist', 'remove', '*@gmail.example'], { env: h.env });
  t.is(r.stdout, '1 removed from the whitelist\n');
  t.is((await vouch(['whitelist', 'list'], { env: h.env })).stdout, '@other.example\n');
});

test('an exact entry is found only under its own key and never acts as a pattern', (t) => {
  for (const sender of ['*@gmail.example', 'x-default@lists.example', 'list-@lists.example', 'Bob Smith@example.com', '"quoted"@example.com']) {
    const entry = exactPattern(senderKeyOf(sender));
    t.true(lookupKeys(sender).includes(entry.key), sender);
    t.true(entry.key.startsWith('a:'), sender);
    for (const other of ['friend@gmail.example', 'x-other@lists.example', 'list-x@lists.example', 'bob@example.com', 'quoted@example.com']) {
      t.false(lookupKeys(other).includes(entry.key), `${sender} must not match ${other}`);
    }
  }
});
