import test from 'ava';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deliver, ensureMaildir, hasMessage, uniqueName } from '../agent/maildir/maildir.js';

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

