// What the classifier's answer means, as tables: bogofilter's terse output read strictly, the
// outcome for a held message, the steps that learn or reverse a decision, and the ham sampling.

import test from 'ava';
import { classifierOutcome, describeSignal, learnSteps, readTerse, sampled, shownScore, type ProgramEnd } from '../agent/policy/classify.js';

const end = (over: Partial<ProgramEnd>): ProgramEnd => ({ code: 0, signal: null, stdout: '', timedOut: false, ...over });

test('bogofilter -T answers are believed only when well formed and in agreement with the exit status', (t) => {
  const table: [Partial<ProgramEnd>, unknown][] = [
    [{ code: 0, stdout: 'S 0.999987\n' }, { kind: 'verdict', verdict: 'spam', score: 0.999987 }],
    [{ code: 0, stdout: 'S 1\n' }, { kind: 'verdict', verdict: 'spam', score: 1 }],
    [{ code: 1, stdout: 'H 4.49586e-06\n' }, { kind: 'verdict', verdict: 'ham', score: 4.49586e-6 }],
    [{ code: 1, stdout: 'H 0\n' }, { kind: 'verdict', verdict: 'ham', score: 0 }],
    [{ code: 2, stdout: 'U 0.520000' }, { kind: 'verdict', verdict: 'unsure', score: 0.52 }],
    [{ code: 1, stdout: 'S 0.99\n' }, { kind: 'failed', why: 'answer and exit 1 disagree' }],
    [{ code: 0, stdout: 'S 1.5\n' }, { kind: 'failed', why: 'unreadable answer' }],
    [{ code: 0, stdout: 'X-Bogosity: Spam, tests=bogofilter\n' }, { kind: 'failed', why: 'unreadable answer' }],
    [{ code: 0, stdout: 'S 0.99\nS 0.99\n' }, { kind: 'failed', why: 'unreadable answer' }],
    [{ code: 0, stdout: '' }, { kind: 'failed', why: 'unreadable answer' }],
    [{ code: 0, stdout: 'S NaN\n' }, { kind: 'failed', why: 'unreadable answer' }],
    [{ code: 3, stdout: '' }, { kind: 'failed', why: 'error (exit 3)' }],
    [{ code: null, signal: 'SIGSEGV' }, { kind: 'failed', why: 'killed by SIGSEGV' }],
    [{ code: null, timedOut: true }, { kind: 'failed', why: 'timed out' }],
    [{ code: null, error: 'ENOENT' }, { kind: 'failed', why: 'program not found' }],
    [{ code: null, error: 'EACCES' }, { kind: 'failed', why: 'cannot run (EACCES)' }],
    [{ code: null, error: 'too much output' }, { kind: 'failed', why: 'unreadable answer (too long)' }],
  ];
  for (const [e, want] of table) t.deepEqual(readTerse(end(e)), want, JSON.stringify(e));
});

test('only the verdicts configured to suppress hold mail without a challenge, and only spam is suspect', (t) => {
  const spam = { kind: 'verdict', verdict: 'spam', score: 0.987 } as const;
  const unsure = { kind: 'verdict', verdict: 'unsure', score: 0.6 } as const;
  const ham = { kind: 'verdict', verdict: 'ham', score: 0.01 } as const;
  const table = [
    [spam, ['spam'], 'classifier: spam 0.98', true],
    [spam, ['spam', 'unsure'], 'classifier: spam 0.98', true],
    [spam, [], undefined, false],
    [unsure, ['spam'], undefined, false],
    [unsure, ['spam', 'unsure'], 'classifier: unsure 0.60', false],
    [ham, ['spam', 'unsure'], undefined, false],
    [{ kind: 'untrained' }, ['spam', 'unsure'], undefined, false],
    [{ kind: 'failed', why: 'timed out' }, ['spam', 'unsure'], undefined, false],
  ] as const;
  for (const [answer, on, suppress, suspect] of table) {
    const o = classifierOutcome(answer, on);
    t.is(o.suppress, suppress, JSON.stringify([answer, on]));
    t.is(o.suspect, suspect, JSON.stringify([answer, on]));
  }
  t.deepEqual(classifierOutcome(spam, ['spam']).signal, { verdict: 'spam', score: 0.987 });
  t.is(classifierOutcome({ kind: 'failed', why: 'timed out' }, ['spam']).failure, 'classifier timed out');
  t.deepEqual(classifierOutcome({ kind: 'failed', why: 'timed out' }, ['spam']).signal, { verdict: 'error', error: 'timed out' });
  t.is(classifierOutcome(spam, ['spam']).failure, undefined);
});

test('a score is shown with two decimals and never rounded up to a certainty', (t) => {
  t.is(shownScore(0.999987), '0.99');
  t.is(shownScore(1), '1.00');
  t.is(shownScore(0), '0.00');
  t.is(shownScore(0.505), '0.50');
});

test('learning brings a message from what the word list holds to the verdict, unlearning a contrary one first', (t) => {
  t.deepEqual(learnSteps(undefined, 'ham'), ['-n']);
  t.deepEqual(learnSteps(null, 'spam'), ['-s']);
  t.deepEqual(learnSteps('ham', 'ham'), []);
  t.deepEqual(learnSteps('spam', 'spam'), []);
  t.deepEqual(learnSteps('ham', 'spam'), ['-N', '-s']);
  t.deepEqual(learnSteps('spam', 'ham'), ['-S', '-n']);
});

test('whitelisted deliveries are sampled 1 in N by their key, the same way on a retry', (t) => {
  t.false(sampled('20480-00000000aaaa', 0));
  t.true(sampled('20480-12345678ffff', 1));
  t.true(sampled('20480-0000000a0000', 10));
  t.false(sampled('20480-0000000b0000', 10));
  t.false(sampled('20480-zzzz', 3));
  // The length in front of the hash does not choose: the same hash gives the same answer.
  t.is(sampled('1-0000000affff', 10), sampled('99999-0000000affff', 10));
  let n = 0;
  for (let i = 0; i < 10_000; i++) if (sampled(`20480-${((i * 2654435761) >>> 0).toString(16).padStart(8, '0')}00000000`, 100)) n++;
  t.true(n > 50 && n < 200, String(n));
});

test('the stored signal reads back as the CLI and the page show it; anything else is no signal', (t) => {
  t.deepEqual(describeSignal({ classifier: { verdict: 'spam', score: 0.995 } }), { verdict: 'spam', score: 0.995, text: 'spam 0.99' });
  t.deepEqual(describeSignal({ classifier: { verdict: 'unsure', untrained: true } }), { verdict: 'unsure', score: undefined, text: 'unsure (no word list yet)' });
  t.deepEqual(describeSignal({ classifier: { verdict: 'error', error: 'timed out' } }), { verdict: 'error', score: undefined, text: 'not classified (timed out)' });
  t.is(describeSignal({}), undefined);
  t.is(describeSignal({ classifier: 'spam' }), undefined);
  t.is(describeSignal({ classifier: { score: 1 } }), undefined);
  t.is(describeSignal({ classifier: { verdict: 'ham', score: 7 } })?.text, 'ham');
});
