// When no confirmation request may go out: one table of message → verdict for suppression().
import test from 'ava';
import { addressKey } from '../agent/mail/address.js';
import { readHeaders } from '../agent/mail/header.js';
import { suppression } from '../agent/policy/suppress.js';

const OWN = 'alice@example.org';

function facts(sender: string, headerLines: string[] = [], authservIds: string[] = ['mx.example.org']) {
  const head = ['From: Someone <someone@example.com>', 'Subject: hi', ...headerLines].join('\n');
  return { sender, senderKey: addressKey(sender), own: OWN, headers: readHeaders(Buffer.from(`${head}\n\nbody\n`)), authservIds };
}

const table: [string, string, string[], string | undefined][] = [
  // what, envelope sender, header lines, expected reason (undefined = a request may go out)
  ['an ordinary person', 'bob@example.com', [], undefined],
  ['an ordinary person with a +extension', 'bob+news@example.com', [], undefined],
  ['the null sender', '', [], 'null sender'],
  ['the null sender written <>', '<>', [], 'null sender'],
  ['MAILER-DAEMON', 'MAILER-DAEMON@mx.example.com', [], 'automatic sender address'],
  ['postmaster', 'postmaster@example.com', [], 'automatic sender address'],
  ['a -request address', 'list-request@lists.example', [], 'automatic sender address'],
  ['an owner- address', 'owner-list@lists.example', [], 'automatic sender address'],
  ['a list bounce address', 'list-bounces+alice=example.org@lists.example', [], 'automatic sender address'],
  ['no-reply', 'no-reply@shop.example', [], 'automatic sender address'],
  ['noreply', 'NoReply@shop.example', [], 'automatic sender address'],
  ['donotreply', 'donotreply@shop.example', [], 'automatic sender address'],
  ['your own address', 'Alice@Example.org', [], 'your own address as sender'],
  ['a sender with a space', 'bob smith@example.com', [], 'sender address is not a plain address'],
  ['a sender that looks like an option', '-oQ/tmp@example.com', [], 'sender address is not a plain address'],
  ['a quoted local part', '"bob"@example.com', [], 'sender address is not a plain address'],
  ['a sender with CR/LF', 'bob@example.com\r\nBcc: x@y', [], 'sender address is not a plain address'],
  ['Auto-Submitted: auto-replied', 'bob@example.com', ['Auto-Submitted: auto-replied'], 'Auto-Submitted'],
  ['Auto-Submitted: auto-generated with a comment', 'bob@example.com', ['Auto-Submitted: auto-generated (vacation)'], 'Auto-Submitted'],
  ['Auto-Submitted: no', 'bob@example.com', ['Auto-Submitted: no'], undefined],
  ['Auto-Submitted: No; with a parameter', 'bob@example.com', ['Auto-Submitted: No; x=1'], undefined],
  ['Precedence: bulk', 'bob@example.com', ['Precedence: bulk'], 'Precedence: bulk'],
  ['Precedence: JUNK', 'bob@example.com', ['Precedence: JUNK'], 'Precedence: junk'],
  ['Precedence: list', 'bob@example.com', ['Precedence: list'], 'Precedence: list'],
  ['Precedence: first-class', 'bob@example.com', ['Precedence: first-class'], undefined],
  ['List-Id', 'bob@example.com', ['List-Id: <dev.lists.example>'], 'mailing list'],
  ['List-Unsubscribe', 'bob@example.com', ['List-Unsubscribe: <mailto:u@lists.example>'], 'mailing list'],
  ['Mailing-List', 'bob@example.com', ['Mailing-List: contact dev-help@lists.example'], 'mailing list'],
  ['X-Mailing-List', 'bob@example.com', ['X-Mailing-List: dev@lists.example'], 'mailing list'],
  ['X-Spam-Flag: YES', 'bob@example.com', ['X-Spam-Flag: YES'], 'marked as spam'],
  ['X-Spam-Flag: NO', 'bob@example.com', ['X-Spam-Flag: NO'], undefined],
  ['X-Spam-Status: Yes', 'bob@example.com', ['X-Spam-Status: Yes, score=9.1 required=5.0'], 'marked as spam'],
  ['X-Spam-Status: No', 'bob@example.com', ['X-Spam-Status: No, score=0.1 required=5.0'], undefined],
  ['Received-SPF: fail', 'bob@example.com', ['Received-SPF: fail (mx.example.org: domain does not designate)'], 'SPF fail'],
  ['Received-SPF: softfail', 'bob@example.com', ['Received-SPF: softfail (mx.example.org)'], undefined],
  ['a trusted DMARC fail', 'bob@example.com', ['Authentication-Results: mx.example.org; spf=pass smtp.mailfrom=example.com; dmarc=fail header.from=example.com'], 'DMARC fail'],
  ['a trusted SPF fail', 'bob@example.com', ['Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=example.com'], 'SPF fail'],
  ['a trusted pass', 'bob@example.com', ['Authentication-Results: mx.example.org; spf=pass; dkim=pass; dmarc=pass'], undefined],
  ['an untrusted authserv-id claiming a fail', 'bob@example.com', ['Authentication-Results: evil.example; dmarc=fail'], undefined],
];

for (const [what, sender, lines, expected] of table) {
  test(`suppression: ${what} → ${expected ?? 'a request may go out'}`, (t) => {
    t.is(suppression(facts(sender, lines)), expected);
  });
}

test('suppression: Authentication-Results count only when the config names authserv-ids', (t) => {
  t.is(suppression(facts('bob@example.com', ['Authentication-Results: mx.example.org; dmarc=fail'], [])), undefined);
  t.is(suppression(facts('bob@example.com', ['Authentication-Results: MX.Example.org; dmarc=fail'], ['mx.example.org'])), 'DMARC fail');
});

test('suppression: the first rule that matches gives the reason', (t) => {
  t.is(suppression(facts('', ['Precedence: bulk', 'List-Id: <x>'])), 'null sender');
  t.is(suppression(facts('bob@example.com', ['Auto-Submitted: auto-replied', 'Precedence: bulk'])), 'Auto-Submitted');
});
