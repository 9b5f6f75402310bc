// Releases that meet each other: the one code path behind the CLI, the web page, confirms,
// expire and fsck must treat a release another process finished as done, never as an error.
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../agent/home/config.js';
import { deliver, uniqueName } from '../agent/maildir/maildir.js';
import { release } from '../agent/release/release.js';
import { Store } from '../agent/store/store.js';
import { holdInput, maildirFiles } from './helpers.js';

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'vouch-release-'));
  const config = parseConfig(`[identity]\naddress = "alice@example.org"\n[delivery]\nmaildir = "${join(dir, 'Maildir')}"\n`, dir, { HOME: dir });
  const store = await Store.open(join(dir, 'vouch.db'), { create: true });
  return { config, store };
}

test('a release another process finishes between our Maildir check and our body read counts as done', async (t) => {
  const { config, store } = await setup();
  const { id } = await store.hold(holdInput());
  const raw = holdInput().raw;
  // The other process: it fixed the name first, then wrote the file and finished, all while we
  // were between hasMessage() and raw().
  const name = await store.beginRelease(id, () => uniqueName());
  const realRaw = store.raw.bind(store);
  store.raw = async (which: string) => {
    await deliver(config.delivery.maildir, name ?? '', [Buffer.from('Return-Path: <bob@example.com>\nDelivered-To: alice@example.org\n'), raw]);
    await store.finishRelease(which, Date.now());
    return realRaw(which);
  };
  const res = await release(store, config, [id]);
  t.deepEqual(res.released, [id]);
  t.is(maildirFiles(config.delivery.maildir).length, 1);
  t.is((await store.get(id))?.state, 'released');
  await store.close();
});

test('a held message whose body is missing is still an error, not a silent success', async (t) => {
  const { config, store } = await setup();
  const { id } = await store.hold(holdInput());
  await store.db.run('DELETE FROM bodies WHERE id = ?', [id]);
  await t.throwsAsync(release(store, config, [id]), { message: /has no stored bytes/ });
  t.is(maildirFiles(config.delivery.maildir).length, 0);
  await store.close();
});
