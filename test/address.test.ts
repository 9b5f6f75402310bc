import test from 'ava';
import { addressKey, bindingKey, entriesNamed, isPlainAddress, lookupKeys, parsePattern, unwrapSrs } from '../agent/mail/address.js';
import { UsageError } from '../agent/failure/failure.js';

const matches = (pattern: string, sender: string) => lookupKeys(sender).includes(parsePattern(pattern).key);

const table: [string, string, boolean][] = [
  ['bob@example.com', 'bob@example.com', true],
  ['bob@example.com', 'BOB@Example.COM', true],
  ['bob@example.com', 'bobby@example.com', false],
  ['bob@example.com', 'prvs=1234abcd=bob@example.com', true],
  ['@example.com', 'anyone@example.com', true],
  ['*@example.com', 'anyone@example.com', true],
  ['@example.com', 'anyone@sub.example.com', false],
  ['*@*.example.com', 'anyone@sub.example.com', true],
  ['*@*.example.com', 'anyone@a.b.example.com', true],
  ['*@*.example.com', 'anyone@example.com', false],
  ['*@*.example.com', 'anyone@notexample.com', false],
  ['list-return-@lists.example', 'list-return-123-alice=example.org@lists.example', true],
  ['list-return-default@lists.example', 'list-return-123-alice=example.org@lists.example', true],
  ['list-return-@lists.example', 'list-return-@lists.example', false],
  ['list-return-@lists.example', 'list-other-1@lists.example', false],
  ['list-return-@lists.example', 'list-return-1@other.example', false],
  ['owner-list+@lists.example', 'owner-list+bounce=x@lists.example', true],
  ['bob@example.com', '', false],
  ['bob@example.com', 'bob @example.com', false],
];

for (const [pattern, sender, expected] of table) {
  test(`pattern ${pattern} ${expected ? 'matches' : 'does not match'} "${sender}"`, (t) => {
    t.is(matches(pattern, sender), expected);
  });
}

test('patterns are shown back in one canonical form', (t) => {
  t.is(parsePattern(' Bob@Example.com ').text, 'bob@example.com');
  t.is(parsePattern('*@example.com').text, '@example.com');
  t.is(parsePattern('list-default@x.org').text, 'list-@x.org');
  t.is(parsePattern('*@*.x.org').text, '*@*.x.org');
});

for (const bad of ['bob', 'bob@', '@', 'b*b@example.com', '*@exa mple.com', 'a@b@c', '@-bad-.com', 'x@*.y.*.z']) {
  test(`"${bad}" is not a pattern`, (t) => {
    t.throws(() => parsePattern(bad), { instanceOf: UsageError });
  });
}

const grammar: [string, boolean][] = [
  ['bob@example.com', true],
  ['bob.smith+tag@mail.example.co.uk', true],
  ['b@localhost', true],
  ['', false],
  ['bob', false],
  ['bob smith@example.com', false],
  ['"bob"@example.com', false],
  ['bob@example.com\r\nBcc: x@y.z', false],
  ['-f@example.com', false],
  ['bob..x@example.com', false],
  ['bob.@example.com', false],
  ['bob@-example.com', false],
  ['bob@[127.0.0.1]', false],
  ['bób@example.com', false],
  [`${'a'.repeat(65)}@example.com`, false],
  ['bob@exa_mple.com', false],
];

for (const [addr, ok] of grammar) {
  test(`the strict grammar ${ok ? 'accepts' : 'refuses'} ${JSON.stringify(addr)}`, (t) => {
    t.is(isPlainAddress(addr), ok);
  });
}

test('address keys fold case and drop a BATV prefix', (t) => {
  t.is(addressKey('Bob@Example.COM'), 'bob@example.com');
  t.is(addressKey('prvs=0123456789=bob@example.com'), 'bob@example.com');
  t.is(addressKey(''), undefined);
  t.is(addressKey('bob smith@example.com'), undefined);
});

test('a sender has one lookup key per way it could be listed, and no more', (t) => {
  t.deepEqual(lookupKeys('list-return-12@a.lists.example'), [
    'a:list-return-12@a.lists.example',
    'd:a.lists.example',
    's:lists.example',
    's:example',
    'p:list-@a.lists.example',
    'p:list-return-@a.lists.example',
  ]);
});

const bindings: [string, string | undefined][] = [
  ['carol@example.net', 'carol@example.net'],
  ['Carol+News@Example.net', 'carol@example.net'],
  ['prvs=0123abcd=carol+x@example.net', 'carol@example.net'],
  ['SRS0=HHH=TT=example.net=carol@forwarder.example', 'carol@example.net'],
  ['SRS0+HHH=TT=example.net=carol+news@forwarder.example', 'carol@example.net'],
  ['SRS1=HHH=fwd1.example==HHH=TT=example.net=carol@fwd2.example', 'carol@example.net'],
  ['SRS0=HHH=TT=example.net=a=b@forwarder.example', 'a=b@example.net'],
  ['SRS0=broken@forwarder.example', 'srs0=broken@forwarder.example'],
  ['', undefined],
  ['carol smith@example.net', undefined],
];

for (const [addr, key] of bindings) {
  test(`the confirm binding of ${JSON.stringify(addr)} is ${String(key)}`, (t) => {
    t.is(bindingKey(addr), key);
  });
}

test('SRS is unwrapped only when it is SRS', (t) => {
  t.is(unwrapSrs('srs0=hhh=tt=example.net=carol@fwd.example'), 'carol@example.net');
  t.is(unwrapSrs('carol@example.net'), undefined);
  t.is(unwrapSrs('srs0=hhh=tt=example.net@fwd.example'), undefined);
  t.is(unwrapSrs('srs1=hhh=fwd1=hhh=tt=example.net=carol@fwd.example'), undefined);
});

test('a sender that is no plain address has its exact key and its domain keys, never a prefix key', (t) => {
  t.deepEqual(lookupKeys('Bob Smith-x@Example.com'), ['a:bob smith-x@example.com', 'd:example.com', 's:com']);
  t.deepEqual(lookupKeys('-oQ@example.com'), ['a:-oq@example.com', 'd:example.com', 's:com']);
  t.deepEqual(lookupKeys('<>'), []);
  t.deepEqual(lookupKeys(''), []);
});

test('removing by name covers the pattern and the exact entry the list shows', (t) => {
  t.deepEqual(entriesNamed('*@gmail.example').map((p) => p.key), ['d:gmail.example', 'a:*@gmail.example']);
  t.deepEqual(entriesNamed('*@gmail.example', { shown: true }).map((p) => p.key), ['a:*@gmail.example']);
  t.deepEqual(entriesNamed('@gmail.example', { shown: true }).map((p) => p.key), ['d:gmail.example', 'a:@gmail.example']);
  t.deepEqual(entriesNamed('bob@example.com').map((p) => p.key), ['a:bob@example.com']);
  t.deepEqual(entriesNamed('Bob Smith@example.com').map((p) => p.key), ['a:bob smith@example.com']);
  t.throws(() => entriesNamed('nonsense'));
});
