// The review page as a fastify application: plugins (cookie, form bodies, CSRF, security headers),
// the hooks that check Host, Origin and the session, and the routes. buildApp() returns it without
// listening, for tests (inject) and the benchmark; server.ts listens.

import cookie from '@fastify/cookie';
import csrf from '@fastify/csrf-protection';
import formbody from '@fastify/formbody';
import helmet from '@fastify/helmet';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decideHeld, type HeldAction } from '../agent/release/actions.js';
import { describeSignals, signalSummary } from '../agent/auth/describe.js';
import { entriesNamed, parsePattern, type Pattern } from '../agent/mail/address.js';
import { loadConfig, type Config } from '../agent/home/config.js';
import { ConfigError } from '../agent/failure/failure.js';
import { bytesToText, cleanText, readHeaders } from '../agent/mail/header.js';
import { homePaths, packageRoot, readWebToken, type HomePaths } from '../agent/home/home.js';
import { isId } from '../agent/store/ids.js';
import { ParseError, parseAttachment, parseMessage, type ParsedView } from '../agent/mail/parse.js';
import { dayOf, Store, type Held, type ListName } from '../agent/store/store.js';
import { hostAllowed, LoginThrottle, parseListen, parsePasswordHash, sameOrigin, sameSecret, Sessions, verifyPassword, type Listen, type Notice, type Session } from './auth.js';
import { activityChart, challengeText, fmtSize, fmtTime, loadTemplates, plain, type Render } from './views.js';

declare module 'fastify' {
  interface FastifyRequest {
    vouchSession: Session | undefined;
  }
  interface FastifyContextConfig {
    public?: boolean;
  }
}

export interface AppOptions {
  /** The vouch home (its paths, or its folder). */
  readonly home: HomePaths | string;
  /** HOST:PORT the page is reached at; default web.listen from the config. */
  readonly listen?: string;
  /** Overrides the home's config.toml (tests, the benchmark). */
  readonly config?: Config;
  /** The environment the config's `~` paths resolve in (default process.env). */
  readonly env?: NodeJS.ProcessEnv;
  readonly now?: () => number;
}

/** What server.ts needs besides the fastify instance: the port to fix after listening on port 0. */
export interface AppHandle {
  readonly app: FastifyInstance;
  readonly listen: Listen;
  readonly token: string;
  setPort(port: number): void;
}

const PAGE_SIZE = 50;
const LIST_PAGE_SIZE = 100;
const MAX_IDS = 500;
const PARSE_TIMEOUT_MS = 5_000;
/** Runs inside the parser worker on a message's HTML before it is served (web/sanitize.ts). */
const HTML_FILTER = new URL('./sanitize.js', import.meta.url).href;
const TEXT_LIMIT = 1_000_000;
const ACTIONS: Readonly<Record<string, HeldAction>> = {
  release: 'release',
  'release-whitelist': 'release-whitelist',
  delete: 'delete',
  'delete-blacklist': 'delete-blacklist',
};

/** CSP for the page: its own stylesheet, its own sandboxed frame for HTML mail, forms to itself. */
const PAGE_CSP = {
  defaultSrc: ["'none'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  frameSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
};

/** CSP for a message's HTML: no script, nothing fetched from anywhere (inline styles and data:
 * images only), sandboxed even when opened on its own, framed only by the page. */
const MAIL_CSP = {
  defaultSrc: ["'none'"],
  styleSrc: ["'unsafe-inline'"],
  imgSrc: ['data:'],
  fontSrc: ["'none'"],
  formAction: ["'none'"],
  frameAncestors: ["'self'"],
  baseUri: ["'none'"],
  sandbox: [],
};

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  return (await createApp(opts)).app;
}

export async function createApp(opts: AppOptions): Promise<AppHandle> {
  const paths = typeof opts.home === 'string' ? homePaths(opts.home) : opts.home;
  const config = opts.config ?? loadConfig(paths.dir, opts.env ?? process.env);
  const listenText = opts.listen ?? config.web.listen;
  const parsedListen = parseListen(listenText);
  if (!parsedListen) throw new ConfigError(`--listen must be HOST:PORT, not "${listenText.slice(0, 60)}"`);
  const listen = { ...parsedListen };
  const passwordHash = config.web.password_hash === '' ? undefined : parsePasswordHash(config.web.password_hash);
  if (config.web.password_hash !== '' && !passwordHash) {
    throw new ConfigError('config key web.password_hash is not a hash made by `vouch web --hash-password`', 'web.password_hash');
  }
  const token = readWebToken(paths);
  if (token.length < 16) throw new Error('the web-token in the home is too short; delete it and run vouch init');
  const now = opts.now ?? Date.now;
  const render = loadTemplates(join(packageRoot(), 'templates', 'web'));
  const css = readFileSync(join(packageRoot(), 'web', 'static', 'style.css'));
  const store = await Store.open(paths.db, { busyMs: 10_000 });
  try {
    await store.ensureReviewIndexes();
  } catch (err) {
    await store.close();
    throw err;
  }
  const sessions = new Sessions({ now });
  const throttle = new LoginThrottle(10, now);
  const sessionCookie = () => `vouch_session_${listen.port}`;

  const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024, trustProxy: false, return503OnClosing: true });
  app.addHook('onClose', async () => store.close());

  await app.register(cookie);
  await app.register(formbody);
  await app.register(csrf, {
    cookieKey: 'vouch_csrf',
    cookieOpts: { path: '/', sameSite: 'strict', httpOnly: true },
    // Tokens are bound to the session, so a token from one login does not work in another.
    getUserInfo: (req: FastifyRequest) => req.vouchSession?.id ?? 'login',
    csrfOpts: { hmacKey: randomBytes(32).toString('base64url') },
  });
  await app.register(helmet, {
    contentSecurityPolicy: { useDefaults: false, directives: PAGE_CSP },
    referrerPolicy: { policy: 'no-referrer' },
    frameguard: { action: 'deny' },
    hsts: false,
    crossOriginEmbedderPolicy: false,
  });
  app.decorateRequest('vouchSession', undefined);

  // ---- the gate: Host, Origin, token link, session

  app.addHook('onRequest', async (req, reply) => {
    if (!hostAllowed(req.headers.host, listen)) {
      return reply.code(403).type('text/plain; charset=utf-8').send('Refused: this page answers only to its own address (see vouch web --listen).\n');
    }
    reply.header('cache-control', 'no-store');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const site = req.headers['sec-fetch-site'];
      if (!sameOrigin(req.headers.origin, typeof site === 'string' ? site : undefined, req.headers.host)) {
        return reply.code(403).type('text/plain; charset=utf-8').send('Refused: the request did not come from this page.\n');
      }
    }
    const query = req.query as Record<string, unknown>;
    if ((req.method === 'GET' || req.method === 'HEAD') && typeof query['token'] === 'string') {
      // No throttle here: the token cannot be guessed, and a flood of bad links must not lock
      // out the user who holds the real one.
      if (sameSecret(query['token'], token)) {
        startSession(reply);
        return reply.redirect(req.url.split('?')[0] ?? '/', 303);
      }
      return page(reply, 'login', { title: 'Log in', error: 'That login link is not valid. Use the link vouch web printed, or the token in web-token in your vouch home.' }, undefined, 401);
    }
    if (req.routeOptions.config.public) return;
    const s = sessions.get(req.cookies[sessionCookie()]);
    if (!s) {
      if (req.method === 'GET' || req.method === 'HEAD') return reply.redirect('/login', 303);
      return reply.code(401).type('text/plain; charset=utf-8').send('Log in first.\n');
    }
    req.vouchSession = s;
    return;
  });

  app.addHook('preHandler', (req, reply, done) => {
    if (req.method === 'POST') app.csrfProtection(req, reply, done);
    else done();
  });

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) process.stderr.write(`vouch web: ${req.method} ${req.routeOptions.url ?? '?'}: ${err.message.split('\n')[0] ?? ''}\n`);
    const why = err.code?.startsWith('FST_CSRF') ? 'The form was too old or did not come from this page. Go back, reload and try again.' : status >= 500 ? 'Something went wrong on the server.' : err.message;
    return page(reply, 'error', { title: status === 404 ? 'Not found' : status >= 500 ? 'Error' : 'Refused', why }, req.vouchSession, status);
  });

  app.setNotFoundHandler((req, reply) => page(reply, 'error', { title: 'Not found', why: 'There is nothing here.' }, req.vouchSession, 404));

  function startSession(reply: FastifyReply): Session {
    const s = sessions.create();
    reply.setCookie(sessionCookie(), s.id, { path: '/', httpOnly: true, sameSite: 'strict' });
    return s;
  }

  function page(reply: FastifyReply, name: string, data: Record<string, unknown>, session: Session | undefined, status = 200): FastifyReply {
    const notice = session?.notice;
    if (session) session.notice = undefined;
    const html = render(name, {
      ...data,
      session: session !== undefined,
      csrf: reply.generateCsrf({ userInfo: session?.id ?? 'login' }),
      notice,
    });
    return reply.code(status).type('text/html; charset=utf-8').send(html);
  }

  function say(req: FastifyRequest, notice: Notice): void {
    if (req.vouchSession) req.vouchSession.notice = notice;
  }

  // ---- login and logout

  app.get('/static/style.css', { config: { public: true } }, async (_req, reply) => {
    return reply.header('cache-control', 'no-cache').type('text/css; charset=utf-8').send(css);
  });

  app.get('/login', { config: { public: true } }, async (req, reply) => {
    if (sessions.get(req.cookies[sessionCookie()])) return reply.redirect('/', 303);
    return page(reply, 'login', { title: 'Log in', password: passwordHash !== undefined }, undefined);
  });

  app.post('/login', { config: { public: true } }, async (req, reply) => {
    const secret = field(req.body, 'secret') ?? '';
    let ok = secret !== '' && sameSecret(secret, token);
    if (!ok && passwordHash && secret !== '' && secret.length <= 1024) {
      if (throttle.blocked()) {
        return page(reply, 'login', { title: 'Log in', password: true, error: 'Too many failed logins; wait a minute (the token still works).' }, undefined, 429);
      }
      ok = await verifyPassword(secret, passwordHash);
    }
    if (!ok) {
      throttle.fail();
      return page(reply, 'login', { title: 'Log in', password: passwordHash !== undefined, error: 'Wrong token or password.' }, undefined, 401);
    }
    startSession(reply);
    return reply.redirect('/', 303);
  });

  app.post('/logout', async (req, reply) => {
    if (req.vouchSession) sessions.destroy(req.vouchSession.id);
    reply.clearCookie(sessionCookie(), { path: '/' });
    return reply.redirect('/login', 303);
  });

  // ---- held mail

  app.get('/', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const search = text(q['q'], 200);
    const reason = text(q['reason'], 200);
    const want = Math.max(1, Math.min(1_000_000, Math.floor(Number(text(q['page'], 10) ?? '1')) || 1));
    const filter = { ...(search ? { search } : {}), ...(reason ? { reason } : {}) };
    const total = await store.countHeld();
    const matching = search || reason ? await store.countHeld(filter) : total;
    const pages = Math.max(1, Math.ceil(matching / PAGE_SIZE));
    const current = Math.min(want, pages);
    const rows = await store.heldPage({ ...filter, limit: PAGE_SIZE, offset: (current - 1) * PAGE_SIZE });
    const reasons = await store.heldReasons();
    const link = (extra: Record<string, string | number | undefined>) => listUrl({ q: search, reason, ...extra });
    return page(reply, 'list', {
      title: 'Held mail',
      navHeld: true,
      total,
      matching,
      filtered: Boolean(search || reason),
      search: search ?? '',
      reason: reason ?? '',
      reasons: reasons.map((r) => ({ reason: plain(r.reason), n: r.n, href: listUrl({ q: search, reason: r.reason }), active: r.reason === reason })),
      allHref: listUrl({ q: search }),
      rows: rows.map(heldRow),
      page: current,
      pages,
      prev: current > 1 ? link({ page: current - 1 }) : undefined,
      next: current < pages ? link({ page: current + 1 }) : undefined,
      back: link({ page: current > 1 ? current : undefined }),
    }, req.vouchSession);
  });

  app.post('/act', async (req, reply) => {
    const ids = fields(req.body, 'ids').slice(0, MAX_IDS + 1);
    const action = ACTIONS[field(req.body, 'action') ?? ''];
    const back = localPath(field(req.body, 'back'));
    if (!action) {
      say(req, { kind: 'error', text: 'Choose an action.' });
    } else if (ids.length === 0) {
      say(req, { kind: 'error', text: 'Select at least one message.' });
    } else if (ids.length > MAX_IDS || !ids.every(isId)) {
      say(req, { kind: 'error', text: `Select at most ${MAX_IDS} messages, by their ids.` });
    } else {
      try {
        const res = await decideHeld(store, config, ids, action, now());
        say(req, { kind: res.done.length > 0 ? 'ok' : 'error', text: res.summary });
      } catch (err) {
        say(req, { kind: 'error', text: `Nothing was lost, but the action stopped: ${(err as Error).message.split('\n')[0] ?? ''}` });
      }
    }
    return reply.redirect(back, 303);
  });

  app.get<{ Params: { id: string } }>('/message/:id', async (req, reply) => {
    const held = await heldOr404(req.params.id);
    const raw = held.state === 'held' || held.state === 'releasing' ? await store.raw(held.id) : undefined;
    const view: Record<string, unknown> = { title: held.subject || '(no subject)', navHeld: true, m: heldRow(held) };
    if (!raw) {
      return page(reply, 'message', { ...view, gone: held.state === 'releasing' ? 'being released' : held.state }, req.vouchSession);
    }
    const headers = readHeaders(raw, config.delivery.header_limit);
    const show = (name: string) => headers.all(name).map((v) => plain(cleanText(v, 2000)));
    const main = ['from', 'to', 'cc', 'reply-to', 'subject', 'date', 'message-id']
      .flatMap((name) => show(name).map((value) => ({ name: headerName(name), value })));
    const all = headers.fields.map((f) => ({ name: headerName(f.name), value: plain(cleanText(f.value, 4000)) }));
    let parsed: ParsedView | undefined;
    let problem: string | undefined;
    if (raw.length > config.delivery.max_size) {
      problem = 'This message is larger than delivery.max_size; its body is shown undecoded.';
    } else {
      try {
        parsed = await parseMessage(raw, { maxBytes: config.delivery.max_size, timeoutMs: PARSE_TIMEOUT_MS });
      } catch (err) {
        problem = `The message could not be decoded (${err instanceof ParseError ? err.message : 'parser error'}); its body is shown undecoded.`;
      }
    }
    const wantHtml = (req.query as Record<string, unknown>)['view'] === 'html' && parsed?.html !== undefined;
    let body = parsed ? parsed.text ?? '' : bytesToText(raw.subarray(headers.bodyOffset, headers.bodyOffset + TEXT_LIMIT));
    const cut = body.length > TEXT_LIMIT;
    if (cut) body = body.slice(0, TEXT_LIMIT);
    return page(reply, 'message', {
      ...view,
      headers: main,
      allHeaders: all,
      problem,
      body: plain(body),
      cut,
      noText: parsed !== undefined && !parsed.text,
      hasHtml: parsed?.html !== undefined,
      showHtml: wantHtml,
      htmlSrc: `/message/${held.id}/html`,
      textHref: `/message/${held.id}`,
      htmlHref: `/message/${held.id}?view=html`,
      attachments: (parsed?.attachments ?? []).map((a, i) => ({
        name: plain(cleanText(a.filename, 200)),
        type: cleanText(a.contentType, 100),
        size: fmtSize(a.size),
        href: `/message/${held.id}/attachment/${i}`,
      })),
      truncated: parsed?.truncated ?? false,
      back: '/',
    }, req.vouchSession);
  });

  app.get<{ Params: { id: string } }>(
    '/message/:id/html',
    { helmet: { contentSecurityPolicy: { useDefaults: false, directives: MAIL_CSP }, frameguard: { action: 'sameorigin' } } },
    async (req, reply) => {
      const held = await heldOr404(req.params.id);
      const raw = await store.raw(held.id);
      if (!raw || raw.length > config.delivery.max_size) return reply.code(404).type('text/plain; charset=utf-8').send('No HTML version.\n');
      const parsed = await parseMessage(raw, { maxBytes: config.delivery.max_size, timeoutMs: PARSE_TIMEOUT_MS, htmlFilter: HTML_FILTER }).catch(() => undefined);
      if (parsed?.html === undefined) return reply.code(404).type('text/plain; charset=utf-8').send('No HTML version.\n');
      return reply.type('text/html; charset=utf-8').send(parsed.html);
    },
  );

  app.get<{ Params: { id: string; n: string } }>(
    '/message/:id/attachment/:n',
    { helmet: { contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], sandbox: [] } } } },
    async (req, reply) => {
      const held = await heldOr404(req.params.id);
      const n = /^\d{1,4}$/.test(req.params.n) ? Number(req.params.n) : -1;
      const raw = await store.raw(held.id);
      if (n < 0 || !raw || raw.length > config.delivery.max_size) throw notFound();
      const a = await parseAttachment(raw, n, { maxBytes: config.delivery.max_size, timeoutMs: PARSE_TIMEOUT_MS });
      if (!a) throw notFound();
      // Never rendered by the browser: always a download, always an opaque type.
      return reply
        .type('application/octet-stream')
        .header('content-disposition', contentDisposition(a.filename))
        .send(a.content);
    },
  );

  // ---- whitelist and blacklist

  app.get('/lists', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const list: ListName = q['list'] === 'black' ? 'black' : 'white';
    const count = await store.countPatterns(list);
    const pages = Math.max(1, Math.ceil(count / LIST_PAGE_SIZE));
    const current = Math.min(pages, Math.max(1, Math.floor(Number(text(q['page'], 10) ?? '1')) || 1));
    const rows = await store.listPatterns(list, { limit: LIST_PAGE_SIZE, offset: (current - 1) * LIST_PAGE_SIZE });
    const [white, black] = [await store.countPatterns('white'), await store.countPatterns('black')];
    const href = (p: number) => `/lists?list=${list}${p > 1 ? `&page=${p}` : ''}`;
    return page(reply, 'lists', {
      title: list === 'white' ? 'Whitelist' : 'Blacklist',
      navLists: true,
      list,
      listName: list === 'white' ? 'whitelist' : 'blacklist',
      white: list === 'white',
      whiteCount: white,
      blackCount: black,
      rows: rows.map((r) => ({ pattern: r.pattern, added: fmtTime(r.added) })),
      page: current,
      pages,
      prev: current > 1 ? href(current - 1) : undefined,
      next: current < pages ? href(current + 1) : undefined,
      back: href(current),
    }, req.vouchSession);
  });

  app.post('/lists/add', async (req, reply) => {
    const list: ListName = field(req.body, 'list') === 'black' ? 'black' : 'white';
    const lines = (field(req.body, 'patterns') ?? '').split(/\r?\n/).map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '');
    const name = list === 'white' ? 'whitelist' : 'blacklist';
    const parsed: Pattern[] = [];
    const bad: string[] = [];
    for (const line of lines) {
      try {
        parsed.push(parsePattern(line));
      } catch (err) {
        bad.push((err as Error).message);
      }
    }
    if (lines.length === 0) say(req, { kind: 'error', text: 'Enter at least one pattern.' });
    else if (bad.length > 0) say(req, { kind: 'error', text: `Nothing added: ${bad.slice(0, 3).join('; ')}${bad.length > 3 ? ` (and ${bad.length - 3} more)` : ''}` });
    else {
      const n = await store.addPatterns(list, parsed, now());
      say(req, { kind: 'ok', text: `${n} added to the ${name}${n < parsed.length ? ` (${parsed.length - n} already there)` : ''}` });
    }
    return reply.redirect(`/lists?list=${list}`, 303);
  });

  app.post('/lists/remove', async (req, reply) => {
    const list: ListName = field(req.body, 'list') === 'black' ? 'black' : 'white';
    const name = list === 'white' ? 'whitelist' : 'blacklist';
    const parsed: Pattern[] = [];
    for (const p of fields(req.body, 'patterns').slice(0, 10_000)) {
      try {
        // The text as the list shows it: a pattern, or an exact address taken from mail.
        parsed.push(...entriesNamed(p, { shown: true }));
      } catch {
        /* a pattern that does not parse cannot be on the list */
      }
    }
    if (parsed.length === 0) say(req, { kind: 'error', text: 'Select at least one pattern.' });
    else say(req, { kind: 'ok', text: `${await store.removePatterns(list, parsed)} removed from the ${name}` });
    return reply.redirect(localPath(field(req.body, 'back'), `/lists?list=${list}`), 303);
  });

  // ---- activity

  app.get('/activity', async (req, reply) => {
    const today = now();
    const since = dayOf(today - 29 * 86_400_000);
    const chart = activityChart(await store.activity(since), today, 30);
    return page(reply, 'activity', { title: 'Activity', navActivity: true, chart }, req.vouchSession);
  });

  async function heldOr404(id: string): Promise<Held> {
    const held = isId(id) ? await store.get(id) : undefined;
    if (!held) throw notFound();
    return held;
  }

  return {
    app,
    listen,
    token,
    setPort(port: number) {
      listen.port = port;
    },
  };
}

// ---- small border helpers: form and query values into plain strings

function heldRow(h: Held): Record<string, unknown> {
  const ch = challengeText(h.challenge, plain(h.challengeNote));
  return {
    id: h.id,
    href: `/message/${h.id}`,
    received: fmtTime(h.received),
    sender: plain(h.sender) || '<>',
    from: plain(h.fromHeader),
    subject: plain(h.subject) || '(no subject)',
    size: fmtSize(h.size),
    reason: plain(h.reason),
    challenge: ch.text,
    challengeClass: ch.cls,
    suspect: h.suspect,
    signals: describeSignals(h.signals).map((l) => plain(l)),
    signalsShort: plain(signalSummary(h.signals)),
  };
}

function text(v: unknown, max: number): string | undefined {
  if (typeof v !== 'string') return undefined;
  const t = v.trim();
  return t === '' ? undefined : t.slice(0, max);
}

function field(body: unknown, name: string): string | undefined {
  const v = (body as Record<string, unknown> | null | undefined)?.[name];
  return typeof v === 'string' ? v : undefined;
}

function fields(body: unknown, name: string): string[] {
  const v = (body as Record<string, unknown> | null | undefined)?.[name];
  if (typeof v === 'string') return [v];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function listUrl(p: Record<string, string | number | undefined>): string {
  const qs = Object.entries(p)
    .filter((e): e is [string, string | number] => e[1] !== undefined && e[1] !== '')
    .map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`)
    .join('&');
  return qs ? `/?${qs}` : '/';
}

/** A redirect target from a form: a path on this site only (never `//host` or a scheme). */
function localPath(v: string | undefined, fallback = '/'): string {
  return v !== undefined && /^\/(?![/\\])[\x21-\x7e]*$/.test(v) && !v.includes('\\') ? v : fallback;
}

function headerName(name: string): string {
  return name === 'message-id' ? 'Message-ID' : name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => `${d}${c.toUpperCase()}`);
}

function notFound(): Error & { statusCode: number } {
  return Object.assign(new Error('There is no such message.'), { statusCode: 404 });
}

/** A download name that cannot break out of the header or name a path: ASCII fallback plus the
 * RFC 5987 form for the real name. */
export function contentDisposition(filename: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = filename.replace(/[\u0000-\u001f\u007f-\u009f"\\/:*?<>|]/g, '_').replace(/^\.+/, '_').slice(0, 150) || 'attachment';
  const ascii = clean.replace(/[^\x20-\x7e]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)}`;
}
