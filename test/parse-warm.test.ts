// The review page starts one parser thread as it starts (warmParser), without loading mailparser in
// it: the first message opened loads the parser in that thread and is parsed there, under the same
// limits as any other.

import test from 'ava';
import { parseMessage, parserStats, warmParser } from '../agent/mail/parse.js';

async function idleThread(): Promise<boolean> {
  for (let i = 0; i < 600; i++) {
    if (parserStats().idle > 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

test('the warmed thread loads the parser with the first message and parses it; no second thread is started', async (t) => {
  warmParser();
  t.true(await idleThread(), 'the warm thread says it is ready');
  t.is(parserStats().spawned, 1);
  const v = await parseMessage(Buffer.from('Subject: first\nContent-Type: text/html\n\n<p>hello <b>there</b></p>\n'), { maxBytes: 10_000 });
  t.regex(v.html ?? '', /hello <b>there<\/b>/);
  const w = await parseMessage(Buffer.from('Subject: second\n\nplain\n'), { maxBytes: 10_000 });
  t.is(w.text?.trim(), 'plain');
  t.is(parserStats().spawned, 1, 'both messages parsed by the warmed thread');
});
