import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliver, deliverAwaited, ensureMaildir, hasMessage, uniqueName } from '../agent/maildir/maildir.js';
import { syncDirShared } from '../agent/maildir/durable.js';

const tmpMaildir = () => join(mkdtempSync(join(tmpdir(), 'vouch-md-')), 'Maildir');

test('a delivery lands whole in new/ and leaves tmp/ empty', async (t) => {
  const dir = tmpMaildir();
  const name = uniqueName();
  const bytes = Buffer.from('Subject: x\r\n\r\nbody\0with NUL\rand bare CR\n');
  await deliver(dir, name, [Buffer.from('Return-Path: <a@b.c>\n'), bytes]);
  t.deepEqual(readdirSync(join(dir, 'new')), [name]);
  t.deepEqual(readdirSync(join(dir, 'tmp')), []);
  t.deepEqual(readFileSync(join(dir, 'new', name)), Buffer.concat([Buffer.from('Return-Path: <a@b.c>\n'), bytes]));
});

test('a missing Maildir is created with cur, new and tmp', async (t) => {
  const dir = tmpMaildir();
  await ensureMaildir(dir);
  t.deepEqual(readdirSync(dir).sort(), ['cur', 'new', 'tmp']);
});

test('unique names follow the maildir convention and differ', (t) => {
  const a = uniqueName(1_700_000_000_123, 'host/with:odd');
  const b = uniqueName(1_700_000_000_123, 'host/with:odd');
  t.regex(a, /^1700000000\.M\d+P\d+Q\d+\.host\\057with\\072odd$/);
  t.not(a, b);
});

test('a second delivery under the same name (a retry) does not write a second file', async (t) => {
  const dir = tmpMaildir();
  const name = uniqueName();
  await deliver(dir, name, [Buffer.from('one')]);
  await deliver(dir, name, [Buffer.from('one')]);
  t.is(readdirSync(join(dir, 'new')).length, 1);
});

test('another message already under the name is kept, and this one goes in under a name of its own', async (t) => {
  const dir = tmpMaildir();
  const name = uniqueName();
  await deliver(dir, name, [Buffer.from('Subject: first\n\none\n')]);
  await deliver(dir, name, [Buffer.from('Subject: second\n\ntwo\n')]);
  const files = readdirSync(join(dir, 'new')).sort();
  t.is(files.length, 2);
  t.is(readFileSync(join(dir, 'new', name), 'utf8'), 'Subject: first\n\none\n');
  t.true(files.some((f) => f !== name && readFileSync(join(dir, 'new', f), 'utf8') === 'Subject: second\n\ntwo\n'));
  t.deepEqual(readdirSync(join(dir, 'tmp')), []);
});

test('a message is found in new/ and, once read, in cur/ with its flags', async (t) => {
  const dir = tmpMaildir();
  const name = uniqueName();
  t.false(await hasMessage(dir, name));
  await deliver(dir, name, [Buffer.from('x')]);
  t.true(await hasMessage(dir, name));
  renameSync(join(dir, 'new', name), join(dir, 'cur', `${name}:2,S`));
  t.true(await hasMessage(dir, name));
  t.false(await hasMessage(dir, `${name}0`));
});

test('a write error leaves nothing in new/', async (t) => {
  const dir = tmpMaildir();
  mkdirSync(join(dir, 'new'), { recursive: true });
  mkdirSync(join(dir, 'cur'), { recursive: true });
  writeFileSync(join(dir, 'tmp'), 'not a folder');
  await t.throwsAsync(deliver(dir, uniqueName(), [Buffer.from('x')]));
  t.deepEqual(readdirSync(join(dir, 'new')), []);
});

// The server's writer (deliverAwaited) keeps the blocking writer's promises, step for step.

test('the awaited writer: a delivery lands whole in new/, a retry under the name writes nothing more, another message under it gets its own name', async (t) => {
  const dir = tmpMaildir();
  const name = uniqueName();
  const bytes = Buffer.from('Subject: x\r\n\r\nbody\0with NUL\rand bare CR\n');
  await deliverAwaited(dir, name, [Buffer.from('Return-Path: <a@b.c>\n'), Buffer.alloc(0), bytes]);
  t.deepEqual(readdirSync(join(dir, 'new')), [name]);
  t.deepEqual(readFileSync(join(dir, 'new', name)), Buffer.concat([Buffer.from('Return-Path: <a@b.c>\n'), bytes]));
  await deliverAwaited(dir, name, [Buffer.from('Return-Path: <a@b.c>\n'), bytes]);
  t.is(readdirSync(join(dir, 'new')).length, 1);
  await deliverAwaited(dir, name, [Buffer.from('Subject: other\n\n')]);
  const files = readdirSync(join(dir, 'new'));
  t.is(files.length, 2);
  t.true(files.some((f) => f !== name && readFileSync(join(dir, 'new', f), 'utf8') === 'Subject: other\n\n'));
  t.deepEqual(readdirSync(join(dir, 'tmp')), []);
});

test('the awaited writer: a write error leaves nothing in new/', async (t) => {
  const dir = tmpMaildir();
  mkdirSync(join(dir, 'new'), { recursive: true });
  mkdirSync(join(dir, 'cur'), { recursive: true });
  writeFileSync(join(dir, 'tmp'), 'not a folder');
  await t.throwsAsync(deliverAwaited(dir, uniqueName(), [Buffer.from('x')]));
  t.deepEqual(readdirSync(join(dir, 'new')), []);
});

test('200 concurrent deliveries into one Maildir share its folder fsyncs and all land whole', async (t) => {
  const dir = tmpMaildir();
  await ensureMaildir(dir);
  const names = Array.from({ length: 200 }, () => uniqueName());
  await Promise.all(names.map((n, i) => deliverAwaited(dir, n, [Buffer.from(`Subject: ${i}\n\n`), Buffer.alloc(4096 + i, 0x61)])));
  t.deepEqual(readdirSync(join(dir, 'new')).sort(), [...names].sort());
  names.forEach((n, i) => t.is(readFileSync(join(dir, 'new', n)).length, `Subject: ${i}\n\n`.length + 4096 + i));
  t.deepEqual(readdirSync(join(dir, 'tmp')), []);
  // A folder that cannot be opened fails every caller waiting for it, and the next call starts anew.
  await t.throwsAsync(Promise.all([syncDirShared(join(dir, 'missing')), syncDirShared(join(dir, 'missing'))]));
  await t.notThrowsAsync(syncDirShared(join(dir, 'new')));
});
