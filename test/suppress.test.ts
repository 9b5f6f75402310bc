// When no confirmation request may go out: one table of message → verdict for suppression().
import test from 'ava';
import { addressKey } from '../agent/mail/address.js';
import { readHeaders } from '../agent/mail/header.js';
import { programWrote, suppression } from '../agent/policy/suppress.js';

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
  // more machine senders (issue 12, point 10)
  ['an ezmlm VERP -return- sender', 'list-return-123-alice=example.org@lists.example', [], 'automatic sender address'],
  ['an SRS-wrapped MAILER-DAEMON', 'SRS0=HHH=TT=mx.example.com=MAILER-DAEMON@forwarder.example', [], 'automatic sender address'],
  ['an SRS1-wrapped postmaster', 'SRS1=HHH=fwd1.example==HHH=TT=example.com=postmaster@fwd2.example', [], 'automatic sender address'],
  ['an SRS-wrapped list bounce address', 'SRS0=HHH=TT=lists.example=list-bounces+alice=example.org@forwarder.example', [], 'automatic sender address'],
  ['an SRS-wrapped person', 'SRS0=HHH=TT=example.com=bob@forwarder.example', [], undefined],
  ['MAILER_DAEMON with an underscore', 'MAILER_DAEMON@mx.example.com', [], 'automatic sender address'],
  ['a bounces. domain', 'x7f3a9@bounces.example.com', [], 'automatic sender address'],
  ['a bounced. domain', 'abc@bounced.example.com', [], 'automatic sender address'],
  ['a bounce. domain', 'abc@bounce.example.com', [], 'automatic sender address'],
  ['a domain that only contains bounce further down', 'bob@mail.bounces.example.com', [], undefined],
  ['Precedence with a parameter', 'bob@example.com', ['Precedence: bulk; x'], 'Precedence: bulk'],
  ['Precedence with a comment', 'bob@example.com', ['Precedence: list (announce)'], 'Precedence: list'],
  // a program wrote it (issue 12, point 6)
  ['X-Autoreply', 'bob@example.com', ['X-Autoreply: yes'], 'X-Autoreply'],
  ['X-Autorespond', 'bob@example.com', ['X-Autorespond: I am away'], 'X-Autorespond'],
  ['List-Post', 'bob@example.com', ['List-Post: <mailto:dev@lists.example>'], 'mailing list'],
  ['a delivery status report', 'bob@example.com', ['Content-Type: multipart/report; report-type=delivery-status; boundary="x"'], 'delivery or disposition report'],
  ['a disposition notification', 'bob@example.com', ['Content-Type: Multipart/Report; report-type=disposition-notification; boundary=y'], 'delivery or disposition report'],
  ['an ordinary multipart message', 'bob@example.com', ['Content-Type: multipart/mixed; boundary=z'], undefined],
];

for (const [what, sender, lines, expected] of table) {
  test(`suppression: ${what} → ${expected ?? 'a request may go out'}`, (t) => {
    t.is(suppression(facts(sender, lines))?.why, expected);
  });
}

test('suppression: Authentication-Results count only when the config names authserv-ids', (t) => {
  t.is(suppression(facts('bob@example.com', ['Authentication-Results: mx.example.org; dmarc=fail'], [])), undefined);
  t.is(suppression(facts('bob@example.com', ['Authentication-Results: MX.Example.org; dmarc=fail'], ['mx.example.org']))?.why, 'DMARC fail');
});

test('suppression: the first rule that matches gives the reason', (t) => {
  t.is(suppression(facts('', ['Precedence: bulk', 'List-Id: <x>']))?.why, 'null sender');
  t.is(suppression(facts('bob@example.com', ['Auto-Submitted: auto-replied', 'Precedence: bulk']))?.why, 'Auto-Submitted');
});

// Which reasons mean "suspect" (spam or forged: a confirmation never releases it), as data.
const suspects: [string, string[], boolean][] = [
  ['marked as spam', ['X-Spam-Flag: YES'], true],
  ['an SPF fail', ['Received-SPF: fail (mx.example.org)'], true],
  ['a trusted DMARC fail', ['Authentication-Results: mx.example.org; dmarc=fail'], true],
  ['a mailing list', ['List-Id: <x>'], false],
  ['Auto-Submitted', ['Auto-Submitted: auto-generated'], false],
  ['a mailing list that is also marked as spam', ['List-Id: <x>', 'X-Spam-Status: Yes, score=12'], true],
];

for (const [what, lines, suspect] of suspects) {
  test(`suppression: ${what} is ${suspect ? '' : 'not '}suspect`, (t) => {
    t.is(suppression(facts('bob@example.com', lines))?.suspect, suspect);
  });
}

test('suppression: a suspect reason counts even when another rule gives the reason', (t) => {
  t.deepEqual(suppression(facts('', ['X-Spam-Flag: YES'])), { why: 'null sender', suspect: true });
});

// "A program wrote this": the one rule shared by the suppression and the confirmation check.
const programs: [string, string, string[], string | undefined][] = [
  ['a person', 'bob@example.com', [], undefined],
  ['the null sender', '', [], 'null sender'],
  ['Auto-Submitted', 'bob@example.com', ['Auto-Submitted: auto-replied'], 'Auto-Submitted'],
  ['Auto-Submitted: no', 'bob@example.com', ['Auto-Submitted: no'], undefined],
  ['Precedence: bulk', 'bob@example.com', ['Precedence: bulk'], 'Precedence: bulk'],
  ['Precedence: junk; x', 'bob@example.com', ['Precedence: junk; x'], 'Precedence: junk'],
  ['Precedence: list', 'bob@example.com', ['Precedence: list'], 'Precedence: list'],
  ['X-Autoreply', 'bob@example.com', ['X-Autoreply: yes'], 'X-Autoreply'],
  ['X-Autorespond', 'bob@example.com', ['X-Autorespond: yes'], 'X-Autorespond'],
  ['List-Unsubscribe', 'bob@example.com', ['List-Unsubscribe: <mailto:u@x>'], 'mailing list'],
  ['Mailing-List', 'bob@example.com', ['Mailing-List: contact x'], 'mailing list'],
  ['multipart/report', 'bob@example.com', ['Content-Type: multipart/report; report-type=delivery-status'], 'delivery or disposition report'],
  // what only keeps a challenge from going out, not a reply from confirming
  ['a machine address', 'noreply@example.com', [], undefined],
  ['spam', 'bob@example.com', ['X-Spam-Flag: YES'], undefined],
];

for (const [what, sender, lines, expected] of programs) {
  test(`a program wrote it: ${what} → ${expected ?? 'a person'}`, (t) => {
    t.is(programWrote({ sender, headers: facts(sender, lines).headers }), expected);
  });
}

test('every reason a program wrote a message also suppresses its challenge', (t) => {
  for (const [, sender, lines, expected] of programs) {
    if (expected !== undefined) t.is(suppression(facts(sender, lines))?.why, expected);
  }
});
