// A generated, reproducible corpus of ham and spam for the classifier's tests and its measurement
// (bench/classifier.ts): many senders and topics, short and long messages, and the encodings mail
// really comes in (7bit, quoted-printable, base64; UTF-8 and latin-1; HTML only and
// multipart/alternative; encoded Subjects). The two kinds share much of their vocabulary (invoices,
// accounts, meetings, "please find attached") so that the words that tell them apart are not
// simply the topic's name. Same seed, same bytes.

import { random as rng } from './stress/size.js';

type R = () => number;
const pick = <T>(r: R, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)] as T;
const int = (r: R, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

const FIRST = ['Anna', 'Ben', 'Carla', 'David', 'Elif', 'Frank', 'Greta', 'Hiro', 'Ines', 'Jonas', 'Karin', 'Luis', 'Mara', 'Nils', 'Olga', 'Pedro', 'Quentin', 'Rosa', 'Sami', 'Tanja', 'Ute', 'Viktor', 'Wen', 'Xavier', 'Yusuf', 'Zoé', 'Jürgen', 'Hélène', 'Björn', 'Ana'];
const LAST = ['Müller', 'Smith', 'García', 'Nakamura', 'Rossi', 'Dubois', 'Kowalski', 'Jensen', 'Novak', 'Okafor', 'Silva', 'Chen', 'Larsen', 'Weber', 'Fischer', 'Costa', 'Martin', 'Horvat', 'Ivanova', 'Brown'];
const HAM_DOMAINS = ['example.com', 'uni-example.de', 'mail.example.net', 'example.org', 'familie-example.de', 'coop.example', 'school.example.edu', 'clinic.example', 'example.fr', 'studio.example.io'];
const SPAM_DOMAINS = ['example-deals.top', 'secure-example.xyz', 'mail.example-offers.biz', 'example.click', 'promo.example.info', 'example-pharm.ru', 'winner.example.cn', 'example-bank-verify.com', 'fastloan.example.work', 'example.gq'];
const CITIES = ['Berlin', 'Lisbon', 'Osaka', 'Lyon', 'Krakow', 'Oslo', 'Porto', 'Graz', 'Austin', 'Leeds'];
const PRODUCTS = ['Rolex', 'Viagra', 'Cialis', 'Bitcoin', 'Ozempic', 'Ray-Ban', 'iPhone 15', 'Keto Burn', 'CBD oil', 'gold coins'];

/** Ham: what people write to each other, by topic. {n} a name, {c} a city, {d} a day, {x} a number. */
const HAM: Readonly<Record<string, readonly string[]>> = {
  work: [
    'Can we move our meeting on {d} to the afternoon?', 'I have updated the slides for the quarterly review.', 'The draft of the report is in the shared folder, comments welcome.',
    'Could you check the numbers in section {x} before I send it to {n}?', 'The client in {c} asked for a second call next week.', 'I will be out of office on {d}, {n} covers for me.',
    'Thanks for the notes from yesterday, they were very helpful.', 'Let us keep the budget discussion for the team meeting.', 'The build broke after the last merge, I am looking into it.',
    'Please review the pull request when you have a moment.', 'I attached the invoice from the supplier for your approval.', 'The deadline for the proposal is {d}, does that work for you?',
  ],
  family: [
    'Mum says dinner is at seven on {d}.', 'The kids loved the pictures from {c}!', 'Can you pick up Oma from the station on {d}?', 'We are thinking of visiting you in {c} in the summer.',
    'Happy birthday! Hope you have a lovely day.', 'The garden looks wonderful after the rain.', 'Did you find the old photo albums in the attic?', 'Dad fixed the bike, it rides like new.',
    'Let me know when you land, I will wait at the airport.', 'I made the soup you liked, there is some left for you.',
  ],
  club: [
    'Training is moved to the small hall on {d}.', 'The choir rehearsal starts at {x} sharp this week.', 'We still need two volunteers for the bake sale.', 'Minutes of the last members meeting are attached.',
    'The match against {c} was great, well played everyone.', 'Please pay the yearly membership fee of {x} euros by the end of the month.', 'The hiking trip to the lake is confirmed for {d}.',
  ],
  school: [
    'The parents evening is on {d} in room {x}.', 'Your thesis chapter reads well, a few comments inline.', 'The seminar on {d} is cancelled, the reading stays the same.', 'Grades for the exam are online now.',
    'Can you send me the lab protocol from last week?', 'The library has the book you asked about.', 'Our group meets in the cafeteria after the lecture.',
  ],
  errands: [
    'Your appointment with Dr. {n} is confirmed for {d} at {x}.', 'The plumber can come on {d} between nine and twelve.', 'I returned the drill, thanks for lending it.', 'The rent for this month is transferred.',
    'Our neighbour {n} is collecting signatures for the new crossing.', 'The car is ready at the garage, the bill was {x} euros.', 'Here is the recipe for the lemon cake you asked for.',
  ],
  tech: [
    'The server in {c} was restarted after the kernel update.', 'I pushed a fix for the timezone bug, tests pass now.', 'The backup job failed last night, disk {x} is full.',
    'Could you rotate the certificates before they expire on {d}?', 'I wrote up how the deploy works in the wiki.', 'The new laptop arrived, I will set it up tomorrow.',
  ],
};

/** Spam, by kind. {p} a product, {u} a link, {x} a number. */
const SPAM: Readonly<Record<string, readonly string[]>> = {
  pharmacy: [
    'Buy {p} online without prescription, lowest prices guaranteed.', 'Discreet shipping worldwide, order {p} today and save {x}%.', 'Our online pharmacy ships {p} in 24 hours.',
    'Doctors hate this one trick, try {p} risk free.', 'Get {p} at {x}% off, limited stock, click {u} now.',
  ],
  money: [
    'You have been pre-approved for a loan of ${x},000 with no credit check.', 'Earn ${x} per day working from home, no experience needed.', 'Double your investment in {p} within {x} days, guaranteed returns.',
    'Our trading robot made members ${x},000 last month, join now at {u}.', 'Consolidate your debt today, one low monthly payment.', 'Act now, this exclusive offer expires at midnight.',
  ],
  prize: [
    'Congratulations! Your email address has won ${x},000,000 in our international lottery.', 'You are the lucky winner of a brand new {p}, claim your prize at {u}.',
    'To release your winnings send your full name, address and bank details.', 'This is your final notice, unclaimed prizes will be forfeited.',
  ],
  phishing: [
    'Your account has been suspended due to unusual activity.', 'Verify your password within 24 hours or your mailbox will be deleted.', 'We could not process your last payment, update your billing information at {u}.',
    'Dear customer, your parcel is held at customs, pay the fee of {x} euros at {u}.', 'Security alert: someone signed in to your account from a new device.', 'Click here to confirm your identity and restore full access.',
  ],
  scam: [
    'I am a banker with a proposal of mutual benefit concerning an unclaimed deposit of {x} million dollars.', 'I need a trustworthy foreign partner to receive the funds.', 'Kindly reply with your private phone number for more details.',
    'My late client left no next of kin, you will receive {x}% of the total sum.', 'Please keep this transaction strictly confidential.',
  ],
  marketing: [
    'Boost your website to the first page of Google in {x} days.', 'Hot singles in your area are waiting to meet you, visit {u}.', 'Lose {x} kg in a month with {p}, no diet no exercise.',
    'Replica {p} watches, best quality, huge discount.', 'Unsubscribe? Why would you, this deal is amazing!', 'Dear friend, we have a special offer just for you.',
  ],
};

/** Sentences either kind may contain. */
const SHARED = [
  'Please find the attached document.', 'Let me know if you have any questions.', 'Thank you for your time.', 'Have a nice weekend.', 'Best regards.', 'See you soon.',
  'Sorry for the late reply.', 'Hope you are doing well.', 'The invoice is attached.', 'Your account details are below.', 'Call me if anything is unclear.', 'Looking forward to hearing from you.',
];

/** Everyday words both kinds use, for sentences with no topic at all. */
const BABBLE = 'the of and to in is was that for it with as on be at by had are but from or have an they which one you were all we there would their will about if so up out what when can some time only new also any more like other then now over just into after well back good still see much make way here right where need know take think come work day thing last great long little own old year people really first'.split(' ');

const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'the 14th', 'next week'];

function fill(r: R, s: string): string {
  return s
    .replace(/\{n\}/g, () => pick(r, FIRST))
    .replace(/\{c\}/g, () => pick(r, CITIES))
    .replace(/\{d\}/g, () => pick(r, DAYS))
    .replace(/\{x\}/g, () => String(int(r, 2, 99)))
    .replace(/\{p\}/g, () => pick(r, PRODUCTS))
    .replace(/\{u\}/g, () => `http://${pick(r, ['www.', '', 'secure.', 'go.'])}${pick(r, SPAM_DOMAINS)}/${Math.floor(r() * 1e6).toString(36)}`);
}

export interface Generated {
  readonly kind: 'ham' | 'spam';
  readonly sender: string;
  readonly bytes: Buffer;
}

function senderOf(r: R, kind: 'ham' | 'spam'): { name: string; address: string } {
  const f = pick(r, FIRST);
  const l = pick(r, LAST);
  const ascii = (s: string) => s.normalize('NFD').replace(/[^a-zA-Z]/g, '').toLowerCase();
  if (kind === 'ham') return { name: `${f} ${l}`, address: `${ascii(f)}.${ascii(l)}${r() < 0.3 ? int(r, 1, 99) : ''}@${pick(r, HAM_DOMAINS)}` };
  const local = r() < 0.5 ? `${ascii(f)}${int(r, 100, 9999)}` : pick(r, ['info', 'support', 'service', 'offers', 'admin', 'winner', 'news', ascii(l)]);
  const display = r() < 0.4 ? pick(r, ['Customer Service', 'Account Team', 'Lottery Board', 'Online Pharmacy', 'Special Offers']) : `${f} ${l}`;
  return { name: display, address: `${local}@${pick(r, SPAM_DOMAINS)}` };
}

/** A sentence of everyday words. */
function babble(r: R): string {
  const n = int(r, 5, 14);
  const w = Array.from({ length: n }, () => pick(r, BABBLE));
  return `${(w[0] ?? 'so').replace(/^./, (c) => c.toUpperCase())} ${w.slice(1).join(' ')}.`;
}

/** Spam's spelling games: V1agra, c.l.i.c.k, FR EE. */
function obfuscate(r: R, s: string): string {
  return s.replace(/\b[A-Za-z]{4,}\b/g, (w) => {
    const x = r();
    if (x < 0.06) return w.replace(/[aeio]/i, (c) => ({ a: '@', e: '3', i: '1', o: '0' })[c.toLowerCase()] ?? c);
    if (x < 0.09) return w.split('').join('.');
    return w;
  });
}

function body(r: R, kind: 'ham' | 'spam', name: string, hard: number): { subject: string; lines: string[] } {
  // Hard cases (a share `hard` of spam, two thirds of that of ham): spam dressed as a personal
  // note (ham's sentences, one spam line), and ham that sounds like marketing or an account alert
  // (a shop's newsletter, the bank's real notice).
  const disguised = r() < (kind === 'spam' ? hard : (hard * 2) / 3);
  const bank = (kind === 'ham') !== disguised ? HAM : SPAM;
  const other = bank === HAM ? SPAM : HAM;
  const topics = Object.keys(bank);
  const topic = disguised && kind === 'ham' ? pick(r, ['marketing', 'phishing', 'money']) : pick(r, topics);
  const own = bank[topic] ?? [];
  const short = r() < 0.15;
  const n = short ? int(r, 1, 2) : int(r, 2, 9);
  const lines: string[] = [];
  lines.push(kind === 'ham' ? pick(r, ['Hi', 'Hello', 'Dear', 'Hey', 'Hallo', 'Bonjour']) + ` ${pick(r, FIRST)},` : pick(r, ['Dear customer,', 'Hello,', 'Dear friend,', 'Hi,', 'Attention:', `Dear ${pick(r, FIRST)},`]));
  lines.push('');
  for (let i = 0; i < n; i++) {
    // Mostly the topic, sometimes another topic of the same kind, a shared sentence or babble.
    const x = r();
    const s = x < 0.55 ? fill(r, pick(r, own)) : x < 0.7 ? fill(r, pick(r, bank[pick(r, topics)] ?? own)) : x < 0.85 ? pick(r, SHARED) : babble(r);
    lines.push(kind === 'spam' ? obfuscate(r, s) : s);
  }
  // The disguised message's give-away: one line of its real kind.
  if (disguised) lines.splice(int(r, 2, lines.length), 0, fill(r, pick(r, other[pick(r, Object.keys(other))] ?? [])));
  if (!short && r() < 0.4) {
    lines.push('');
    // A long tail: quoted earlier mail for ham, a disclaimer for spam.
    const m = int(r, 3, 20);
    for (let i = 0; i < m; i++) lines.push(kind === 'ham' ? `> ${fill(r, pick(r, bank[pick(r, topics)] ?? own))}` : fill(r, pick(r, [...SHARED, ...(bank[pick(r, topics)] ?? own)])));
  }
  lines.push('', kind === 'ham' ? name.split(' ')[0] ?? name : pick(r, ['The Team', 'Customer Care', name, '', 'Regards, Management']));
  const subject =
    kind === 'ham'
      ? fill(r, pick(r, ['{d}', 'Re: meeting on {d}', 'Fwd: photos from {c}', 'question', 'Re: Re: the report', 'dinner', 'Invoice {x}', 'update', 'Re: your mail', 'Termin am {d}', 'trip to {c}', '']))
      : fill(r, pick(r, ['Your account', 'URGENT: action required', 'Re: your order', 'Invoice {x}', 'Congratulations!!!', '{p} {x}% off', 'Important notice', 'Hello', 'Re: meeting', 'You have won', 'Final reminder', '']));
  return { subject, lines };
}

const b64 = (s: string | Buffer) => (Buffer.isBuffer(s) ? s : Buffer.from(s, 'utf8')).toString('base64').replace(/.{76}/g, '$&\n');

/** Quoted-printable of bytes (soft line breaks at 76). */
function qp(bytes: Buffer): string {
  const out: string[] = [];
  let line = '';
  for (const b of bytes) {
    if (b === 0x0a) {
      out.push(line);
      line = '';
      continue;
    }
    const c = (b >= 33 && b <= 126 && b !== 61) || b === 32 ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
    if (line.length + c.length > 75) {
      out.push(`${line}=`);
      line = '';
    }
    line += c;
  }
  out.push(line);
  return out.join('\n');
}

function encodedWord(r: R, s: string): string {
  // eslint-disable-next-line no-control-regex
  if (/^[\x20-\x7e]*$/.test(s) && r() < 0.7) return s;
  return r() < 0.5 ? `=?UTF-8?B?${Buffer.from(s, 'utf8').toString('base64')}?=` : `=?UTF-8?Q?${qp(Buffer.from(s, 'utf8')).replace(/=\n/g, '').replace(/ /g, '_').replace(/\?/g, '=3F')}?=`;
}

function html(lines: readonly string[], kind: 'ham' | 'spam', r: R): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const ps = lines.filter((l) => l !== '').map((l) => (kind === 'spam' && r() < 0.3 ? `<p><b><font color="red">${esc(l)}</font></b></p>` : `<p>${esc(l)}</p>`));
  const link = kind === 'spam' ? `<p><a href="${fill(r, '{u}')}">Click here</a></p>` : '';
  return `<html><head><meta charset="utf-8"></head><body>${ps.join('\n')}${link}</body></html>\n`;
}

/** One message: headers, then one of the encodings. */
function compose(r: R, kind: 'ham' | 'spam', i: number, seed: number, hard: number): Generated {
  const from = senderOf(r, kind);
  const { subject, lines } = body(r, kind, from.name, hard);
  const text = `${lines.join('\n')}\n`;
  const day = 1 + (i % 28);
  const headers = [
    `From: ${encodedWord(r, from.name)} <${from.address}>`,
    `To: ${r() < 0.8 ? 'Alice <alice@example.org>' : 'undisclosed-recipients:;'}`,
    `Subject: ${encodedWord(r, subject)}`,
    `Date: ${['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'][i % 7]}, ${day} Nov 2026 ${String(int(r, 0, 23)).padStart(2, '0')}:${String(int(r, 0, 59)).padStart(2, '0')}:00 +0000`,
    `Message-ID: <${kind}.${seed}.${i}.${Math.floor(r() * 1e9).toString(36)}@${from.address.split('@')[1]}>`,
    'MIME-Version: 1.0',
  ];
  if (kind === 'spam' && r() < 0.3) headers.push(`X-Mailer: ${pick(r, ['Mass Mailer Pro 5.1', 'PHPMailer 5.2.1', 'Microsoft Outlook Express 6.00.2600.0000'])}`);
  if (kind === 'ham' && r() < 0.3) headers.push(`User-Agent: ${pick(r, ['Mutt/2.2.12', 'Thunderbird/115.5', 'Evolution 3.50'])}`);
  const enc = r();
  let rest: string;
  let raw: Buffer | undefined;
  if (enc < 0.25) {
    // eslint-disable-next-line no-control-regex
    const ascii = /^[\x00-\x7f]*$/.test(text);
    rest = `Content-Type: text/plain; charset=${ascii ? 'us-ascii' : 'utf-8'}\nContent-Transfer-Encoding: ${ascii ? '7bit' : '8bit'}\n\n${text}`;
  } else if (enc < 0.45) {
    rest = `Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n${qp(Buffer.from(text, 'utf8'))}\n`;
  } else if (enc < 0.55) {
    rest = `Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n\n${b64(text)}\n`;
  } else if (enc < 0.65) {
    // latin-1, 8bit: the bytes themselves are not UTF-8.
    raw = Buffer.concat([Buffer.from(`${headers.join('\n')}\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\n`, 'utf8'), Buffer.from(text, 'latin1')]);
    rest = '';
  } else if (enc < 0.75) {
    rest = `Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: ${r() < 0.5 ? 'quoted-printable' : 'base64'}\n\n`;
    const h = html(lines, kind, r);
    rest += rest.includes('base64') ? `${b64(h)}\n` : `${qp(Buffer.from(h, 'utf8'))}\n`;
  } else {
    const boundary = `=_b${Math.floor(r() * 1e12).toString(36)}`;
    const h = html(lines, kind, r);
    rest = [
      `Content-Type: multipart/alternative; boundary="${boundary}"`,
      '',
      'This is a multi-part message in MIME format.',
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      'Content-Transfer-Encoding: quoted-printable',
      '',
      qp(Buffer.from(text, 'utf8')),
      `--${boundary}`,
      'Content-Type: text/html; charset=utf-8',
      'Content-Transfer-Encoding: base64',
      '',
      b64(h),
      `--${boundary}--`,
      '',
    ].join('\n');
  }
  const bytes = raw ?? Buffer.from(`${headers.join('\n')}\n${rest}`, 'utf8');
  return { kind, sender: from.address, bytes };
}

/** The share of disguised spam in the corpus by default (see body()). */
export const HARD = 0.05;

/** `n` ham and `n` spam messages, interleaved, from `seed`; `hard` is the share of spam disguised
 * as personal mail. */
export function corpus(seed: number, n: number, hard = HARD): Generated[] {
  const r = rng(seed);
  const out: Generated[] = [];
  for (let i = 0; i < n; i++) {
    out.push(compose(r, 'ham', i, seed, hard));
    out.push(compose(r, 'spam', i, seed, hard));
  }
  return out;
}

/** Messages as an mbox file's bytes (mboxrd quoting). */
export function mbox(messages: readonly Generated[]): Buffer {
  return Buffer.concat(
    messages.flatMap((m) => {
      const text = m.bytes.toString('latin1').replace(/^(>*From )/gm, '>$1');
      return [Buffer.from(`From ${m.sender} Mon Nov 23 10:00:00 2026\n`), Buffer.from(text, 'latin1'), Buffer.from(text.endsWith('\n') ? '\n' : '\n\n')];
    }),
  );
}
