// The review page shows what each check found about a held message: in the list's reason and on
// the message view, escaped (a HELO name is the sender's to choose).

import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../agent/home/config.js';
import { Store } from '../agent/store/store.js';
import { buildApp } from '../web/server.js';
import { holdInput, makeHome } from './helpers.js';

const HOST = '127.0.0.1:8025';

test('the list and the message view show the client, SPF, DKIM, DMARC, blocklist and classifier answers, escaped', async (t) => {
  const home = await makeHome({ config: { send: { transport: 'file' } } });
  const store = await Store.open(join(home.dir, 'vouch.db'));
  const held = await store.hold(
    holdInput({
      challengeNote: 'forged sender: DMARC fail for good.example (p=reject)',
      suspect: true,
      signals: {
        client: { ip: '203.0.113.5', helo: '<script>x</script>', source: 'received', by: 'mx.example.org' },
        auth: { source: 'mailauth', envelope: { domain: 'good.example', org: 'good.example' }, spf: { result: 'fail', domain: 'good.example' }, dkim: [], dmarc: { result: 'fail', domain: 'good.example', org: 'good.example', policy: 'reject' }, arc: 'none', temperror: false, ms: 12 },
        dnsbl: [{ zone: 'bl.test', status: 'listed', answer: '127.0.0.2' }],
        classifier: { verdict: 'spam', score: 0.99 },
      },
    }),
  );
  await store.close();
  const config = loadConfig(home.dir, home.env);
  const app = await buildApp({ home: home.dir, listen: HOST, config });
  t.teardown(() => app.close());
  const token = readFileSync(join(home.dir, 'web-token'), 'utf8').trim();
  const login = await app.inject({ method: 'GET', url: `/?token=${token}`, headers: { host: HOST } });
  const cookie = String(login.headers['set-cookie']).split(';')[0] ?? '';
  const list = await app.inject({ method: 'GET', url: '/messages', headers: { host: HOST, cookie } });
  t.is(list.statusCode, 200);
  t.regex(list.body, /203\.0\.113\.5 · SPF fail · DKIM none · DMARC fail · bl\.test listed/);
  t.regex(list.body, /<span class="badge sig">classifier: spam 0\.99<\/span>/, 'the classifier\'s verdict is a badge of its own');
  t.regex(list.body, /suppressed: forged sender: DMARC fail for good\.example \(p&#x3D;reject\)/);
  const view = await app.inject({ method: 'GET', url: `/message/${held.id}`, headers: { host: HOST, cookie } });
  t.is(view.statusCode, 200);
  t.regex(view.body, /<li>SPF: fail \(good\.example\)<\/li>/);
  t.regex(view.body, /<li>DMARC: fail \(good\.example, p&#x3D;reject\)<\/li>/);
  t.regex(view.body, /<li>DNSBL bl\.test: listed \(127\.0\.0\.2\)<\/li>/);
  t.regex(view.body, /suspect: a confirmation does not release it/);
  t.notRegex(view.body, /<script>x/);
  t.regex(view.body, /&lt;script&gt;x/);
});
