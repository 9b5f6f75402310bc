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
import { addToList, decideHeld, removeFromList, restoreFromTrash, undoAction, type HeldAction, type ListAs } from '../agent/release/actions.js';
import { addressKey, domainOf, entriesNamed, headerAddress, parsePattern, type Pattern } from '../agent/mail/address.js';
import { describeSignals, signalSummary } from '../agent/auth/describe.js';
import { loadConfig, type Config } from '../agent/home/config.js';
import { ConfigError } from '../agent/failure/failure.js';
import { bytesToText, cleanText, readHeaders } from '../agent/mail/header.js';
import { homePaths, packageRoot, readSecret, readWebToken, type HomePaths } from '../agent/home/home.js';
import { isId } from '../agent/store/ids.js';
import { recentDeliveries } from '../agent/store/journal.js';
import { claimNote } from '../agent/store/claim.js';
import { hostname } from 'node:os';
import { ParseError, parseAttachment, parseMessage, warmParser, type ParsedView } from '../agent/mail/parse.js';
import { dayOf, LOG_KEEP, Store, type Held, type ListName, type ListQuery } from '../agent/store/store.js';
import { hostAllowed, LoginThrottle, parseListen, parsePasswordHash, sameOrigin, sameSecret, Sessions, verifyPassword, type Listen, type Notice, type Session } from './auth.js';
import { describeSignal } from '../agent/policy/classify.js';
import { activityChart, challengeText, fmtSize, fmtTime, loadTemplates, plain, type Render } from './views.js';
import { canAskNow, detail, kindOf, kinds, riskyToBlock } from './reasons.js';

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
const PAGE_SIZES = [25, 50, 100, 200] as const;
const LIST_PAGE_SIZE = 100;
const MAX_IDS = 500;
/** The most messages one action takes ("all matching", or a sender's whole held mail). */
const MAX_ALL = 20_000;
const PARSE_TIMEOUT_MS = 5_000;
/** Runs inside the parser worker on a message's HTML before it is served (web/sanitize.ts). */
const HTML_FILTER = new URL('./sanitize.js', import.meta.url).href;
const TEXT_LIMIT = 1_000_000;
const ACTIONS: Readonly<Record<string, HeldAction>> = {
  release: 'release',
  'release-whitelist': 'release-whitelist',
  delete: 'delete',
  'delete-blacklist': 'delete-blacklist',
  allow: 'release-whitelist',
  block: 'delete-blacklist',
};

/** CSP for the page: its own stylesheet and script (keyboard and selection; the page works without
 * it), its own sandboxed frame for HTML mail, forms to itself. */
const PAGE_CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'"],
  frameSrc: ["'self'"],
  formAction: ["'self'"],
  frameAncestors: ["'none'"],
  baseUri: ["'none'"],
};

/** CSP for a message's HTML: no script, nothing fetched from anywhere (inline styles and data:
 * images only), no form may go anywhere, framed only by the page, and sandboxed even when opened
 * on its own. The sandbox keeps the document's own origin (allow-same-origin) and nothing else:
 * the page's script reads the frame's height to size it, while the document itself runs no
 * script, submits no form, opens no window and cannot navigate the page (no allow-scripts,
 * allow-forms, allow-popups or allow-top-navigation; the frame element says the same). */
const MAIL_CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'none'"],
  styleSrc: ["'unsafe-inline'"],
  imgSrc: ['data:'],
  fontSrc: ["'none'"],
  formAction: ["'none'"],
  frameAncestors: ["'self'"],
  baseUri: ["'none'"],
  sandbox: ['allow-same-origin'],
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
  const js = readFileSync(join(packageRoot(), 'web', 'static', 'triage.js'));
  const store = await Store.open(paths.db, { busyMs: 10_000 });
  try {
    await store.ensureReviewIndexes();
  } catch (err) {
    await store.close();
    throw err;
  }
  warmParser();
  const sessions = new Sessions({ now, idleMs: config.web.session_idle, lifeMs: config.web.session_lifetime });
  const nextCookie = () => `vouch_next_${listen.port}`;
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
      if (req.method === 'GET' || req.method === 'HEAD') {
        // Back to what the user was doing after logging in again (a stale session, a bookmark).
        const want = localPath(req.url, '/');
        if (want !== '/' && want.length <= 2000) reply.setCookie(nextCookie(), want, { path: '/', httpOnly: true, sameSite: 'strict' });
        return reply.redirect('/login', 303);
      }
      // A form sent with an ended session: the styled login page (the action was not done).
      return page(reply, 'login', { title: 'Log in', password: passwordHash !== undefined, error: 'Your session has ended, so that was not done. Log in, then do it again.' }, undefined, 401);
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
      here: localPath(reply.request.url),
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

  app.get('/static/triage.js', { config: { public: true } }, async (_req, reply) => {
    return reply.header('cache-control', 'no-cache').type('text/javascript; charset=utf-8').send(js);
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
    const want = localPath(req.cookies[nextCookie()], '/');
    reply.clearCookie(nextCookie(), { path: '/' });
    return reply.redirect(want.startsWith('/login') ? '/' : want, 303);
  });

  app.post('/logout', async (req, reply) => {
    if (req.vouchSession) sessions.destroy(req.vouchSession.id);
    reply.clearCookie(sessionCookie(), { path: '/' });
    return reply.redirect('/login', 303);
  });

  // ---- held mail: the sender view (the default), the message list, actions and their undo

  /** The filter of a place as the store takes it. */
  async function filterOf(p: Place): Promise<{ filter: ListQuery; chips: ReturnType<typeof kinds> }> {
    const chips = kinds(await store.heldWhy());
    const filter: ListQuery = {
      ...(p.q ? { search: p.q } : {}),
      ...(p.reason ? { reason: p.reason } : {}),
      ...(p.why ? { why: chips.keys.get(p.why) ?? [] } : {}),
      ...(p.sender !== undefined ? { senderKey: p.sender } : {}),
    };
    return { filter, chips };
  }

  /** How many held messages match: from the counts by reason when only a reason filters. */
  async function countOf(p: Place, chips: ReturnType<typeof kinds>, total: number, filter: ListQuery): Promise<number> {
    if (p.q || p.reason || p.sender !== undefined) return store.countHeld(filter);
    if (p.why) return chips.list.find((k) => k.key === p.why)?.n ?? 0;
    return total;
  }

  function chipsView(p: Place, chips: ReturnType<typeof kinds>) {
    return chips.list.map((k) => ({ label: k.label, n: k.n, href: placeUrl({ ...p, why: k.key, reason: undefined, page: 1 }), active: k.key === p.why, key: k.key }));
  }

  function pagesView(p: Place, pages: number) {
    const out: { n: number; href: string; current: boolean; gap: boolean }[] = [];
    let last = 0;
    for (let n = 1; n <= pages; n++) {
      if (n === 1 || n === pages || Math.abs(n - p.page) <= 2) {
        if (last > 0 && n - last > 1) out.push({ n: 0, href: '', current: false, gap: true });
        out.push({ n, href: placeUrl({ ...p, page: n }), current: n === p.page, gap: false });
        last = n;
      }
    }
    return out;
  }

  function commonView(p: Place, chips: ReturnType<typeof kinds>, total: number, matching: number, pages: number) {
    return {
      navHeld: true,
      total,
      matching,
      filtered: Boolean(p.q || p.reason || p.why || p.sender !== undefined),
      search: p.q ?? '',
      place: placeFields(p),
      reasons: chipsView(p, chips),
      allHref: placeUrl({ ...p, why: undefined, reason: undefined, page: 1 }),
      noWhy: !p.why && !p.reason,
      sendersHref: placeUrl({ ...p, view: 'senders', sender: undefined, page: 1 }),
      messagesHref: placeUrl({ ...p, view: 'messages', page: 1 }),
      clearHref: placeUrl({ view: p.view, page: 1, size: p.size }),
      sizes: PAGE_SIZES.map((n) => ({ n, href: placeUrl({ ...p, size: n, page: 1 }), current: n === p.size })),
      page: p.page,
      pages,
      pageLinks: pagesView(p, pages),
      prev: p.page > 1 ? placeUrl({ ...p, page: p.page - 1 }) : undefined,
      next: p.page < pages ? placeUrl({ ...p, page: p.page + 1 }) : undefined,
      back: placeUrl(p),
      moreThanPage: matching > p.size,
    };
  }

  app.get('/', async (req, reply) => {
    const p = readPlace(req.query, 'senders');
    const { filter, chips } = await filterOf(p);
    const total = chips.list.reduce((n, k) => n + k.n, 0);
    let matching: number;
    let senderCount: number;
    let groups: Awaited<ReturnType<typeof store.senders>>;
    let here: Place;
    let pages: number;
    if (p.q) {
      // A search: one pass over its matches gives the counts and the page (a second one only for
      // a page past the end, which shows the last page instead).
      let sum = await store.senderSummary({ ...filter, limit: p.size, offset: (p.page - 1) * p.size });
      pages = Math.max(1, Math.ceil(sum.senderCount / p.size));
      here = { ...p, page: Math.min(p.page, pages) };
      if (here.page !== p.page) sum = await store.senderSummary({ ...filter, limit: p.size, offset: (here.page - 1) * p.size });
      ({ matching, senderCount, groups } = sum);
    } else {
      [matching, senderCount] = await Promise.all([countOf(p, chips, total, filter), store.countSenders(filter)]);
      pages = Math.max(1, Math.ceil(senderCount / p.size));
      here = { ...p, page: Math.min(p.page, pages) };
      groups = await store.senders({ ...filter, limit: here.size, offset: (here.page - 1) * here.size });
    }
    return page(reply, 'senders', {
      title: 'Held mail',
      ...commonView(here, chips, total, matching, pages),
      bySender: true,
      senderCount,
      groups: groups.map((g) => {
        const k = kindOf(g.newest);
        const from = headerAddress(g.newest.fromHeader);
        return {
          key: g.senderKey,
          sender: plain(g.newest.sender) || '<>',
          from: plain(g.newest.fromHeader),
          fromDiffers: from !== undefined && from !== g.senderKey,
          n: g.n,
          many: g.n > 1,
          subject: plain(g.newest.subject) || '(no subject)',
          received: fmtTime(g.newest.received),
          kind: k.label,
          kindKey: k.key,
          detail: detail(g.newest, k, config.pending.lifetime, fmtTime),
          risky: riskyToBlock(k, g.newest),
          openHref: placeUrl({ ...here, view: 'messages', sender: g.senderKey, page: 1 }),
          messageHref: `/message/${g.newest.id}${placeQuery({ ...here, sender: g.senderKey })}`,
          allowValue: `allow|${g.senderKey}`,
          blockValue: `block|${g.senderKey}`,
          listed: g.newest.sender === '' ? 'nothing (no envelope sender)' : plain(g.senderKey),
        };
      }),
    }, req.vouchSession);
  });

  app.get('/messages', async (req, reply) => {
    const p = readPlace(req.query, 'messages');
    const { filter, chips } = await filterOf(p);
    const total = chips.list.reduce((n, k) => n + k.n, 0);
    const matching = await countOf(p, chips, total, filter);
    const pages = Math.max(1, Math.ceil(matching / p.size));
    const here = { ...p, page: Math.min(p.page, pages) };
    const rows = await store.heldPage({ ...filter, limit: here.size, offset: (here.page - 1) * here.size });
    const heads = await store.heads(rows.map((r) => r.id));
    return page(reply, 'list', {
      title: p.sender !== undefined ? `Held mail from ${p.sender || '<>'}` : 'Held mail',
      ...commonView(here, chips, total, matching, pages),
      senderFilter: p.sender !== undefined ? plain(p.sender) || '<>' : undefined,
      rows: rows.map((h) => ({ ...heldRow(h, config.pending.lifetime), ...badges(heads.get(h.id)), href: `/message/${h.id}${placeQuery(here)}` })),
    }, req.vouchSession);
  });

  app.get('/trash', async (req, reply) => {
    const rows = await store.trash({ limit: 200 });
    return page(reply, 'trash', {
      title: 'Trash',
      navTrash: true,
      days: Math.round(config.pending.trash / 86_400_000),
      rows: rows.map((h) => ({ ...heldRow(h, config.pending.lifetime), deleted: fmtTime(h.deleted) })),
      back: '/trash',
    }, req.vouchSession);
  });

  app.post('/restore', async (req, reply) => {
    const ids = fields(req.body, 'ids').filter(isId).slice(0, MAX_IDS);
    const { restored, undo } = await restoreFromTrash(store, ids, now());
    say(req, restored > 0 ? { kind: 'ok', text: `${restored} restored to the held mail`, ...(undo !== undefined ? { undo } : {}) } : { kind: 'error', text: 'Select at least one message in the trash.' });
    return reply.redirect(localPath(field(req.body, 'back'), '/trash'), 303);
  });

  app.post('/act', async (req, reply) => {
    const body = req.body;
    let actionName = field(body, 'action') ?? '';
    let senders = fields(body, 'senders').slice(0, MAX_IDS + 1);
    let ids = fields(body, 'ids').slice(0, MAX_IDS + 1);
    // One row's own button: `allow|sender` (the sender view) acts on that row alone.
    const one = field(body, 'do');
    if (one !== undefined && one.includes('|')) {
      actionName = one.slice(0, one.indexOf('|'));
      senders = [one.slice(one.indexOf('|') + 1)];
      ids = [];
    }
    const back = localPath(field(body, 'back'));
    const nextUrl = field(body, 'next') === undefined ? undefined : localPath(field(body, 'next'), back);
    if (field(body, 'listAs') === 'none' && actionName === 'delete-blacklist') actionName = 'delete';
    const action = ACTIONS[actionName];
    const wholeSender = actionName === 'allow' || actionName === 'block' || actionName === 'release-whitelist' || actionName === 'delete-blacklist';
    const all = field(body, 'all') === '1';
    const listAs: ListAs = field(body, 'listAs') === 'from' ? 'from' : field(body, 'listAs') === 'domain' ? 'domain' : 'sender';
    if (!action) {
      say(req, { kind: 'error', text: 'Choose an action.' });
      return reply.redirect(back, 303);
    }
    if (ids.length > MAX_IDS || senders.length > MAX_IDS || !ids.every(isId)) {
      say(req, { kind: 'error', text: `Select at most ${MAX_IDS} messages, by their ids.` });
      return reply.redirect(back, 303);
    }
    let targets: string[];
    if (all) {
      const { filter } = await filterOf(readPlace(body, 'messages'));
      targets = await store.heldIds(filter, MAX_ALL);
    } else {
      targets = [...ids, ...(await store.heldOf(senders))];
    }
    if (wholeSender && targets.length > 0) {
      // Allow and Block settle the sender, not one message: their other held mail goes too.
      const keys = [...new Set((await store.heldBrief(targets)).map((h) => h.senderKey))];
      targets = [...new Set([...targets, ...(await store.heldOf(keys))])].slice(0, MAX_ALL);
    }
    targets = [...new Set(targets)];
    if (targets.length === 0) {
      say(req, { kind: 'error', text: 'Select at least one message.' });
      return reply.redirect(back, 303);
    }
    if (action === 'delete-blacklist' && listAs === 'sender' && field(body, 'confirm') !== '1') {
      // Blacklisting with care: a list's, a bounce's or a robot's envelope sender is rarely the one
      // to block; ask, and offer the From address or its domain.
      const risky: Record<string, unknown>[] = [];
      for (const h of await store.heldBrief(targets)) {
        if (risky.length < 50 && riskyToBlock(kindOf(h), h) && !risky.some((r) => r['sender'] === (plain(h.sender) || '<>'))) {
          const from = headerAddress(h.fromHeader);
          risky.push({ sender: plain(h.sender) || '<>', kind: kindOf(h).label, from: from ?? '', domain: from ? `@${domainOf(from)}` : '' });
        }
      }
      if (risky.length > 0) {
        return page(reply, 'confirm', {
          title: 'Block which address?',
          navHeld: true,
          risky: risky.slice(0, 20),
          n: targets.length,
          ids: targets.slice(0, MAX_ALL),
          back,
          next: nextUrl,
          hasFrom: risky.some((r) => r['from'] !== ''),
        }, req.vouchSession);
      }
    }
    let goTo = back;
    // At most MAX_ALL at once; the notice says when more were left for a second go.
    const capped = targets.length >= MAX_ALL ? ` (at most ${MAX_ALL.toLocaleString('en')} at once: do it again for the rest)` : '';
    try {
      const res = await decideHeld(store, config, targets, action, now(), { listAs });
      say(req, { kind: res.done.length > 0 ? 'ok' : 'error', text: `${res.summary}${capped}`, ...(res.undo !== undefined ? { undo: res.undo } : {}) });
      if (nextUrl !== undefined) {
        const m = /^\/message\/([a-z2-7]+)/.exec(nextUrl);
        const nextHeld = m?.[1] ? await store.get(m[1]) : undefined;
        if (nextHeld && nextHeld.state === 'held') goTo = nextUrl;
      }
    } catch (err) {
      say(req, { kind: 'error', text: `Nothing was lost, but the action stopped: ${(err as Error).message.split('\n')[0] ?? ''}` });
    }
    return reply.redirect(goTo, 303);
  });

  app.post('/undo', async (req, reply) => {
    const id = Number(field(req.body, 'undo') ?? '');
    const back = localPath(field(req.body, 'back'));
    if (!Number.isSafeInteger(id) || id <= 0) say(req, { kind: 'error', text: 'There is nothing to undo.' });
    else {
      const text = await undoAction(store, config, id, now());
      say(req, { kind: text.startsWith('Undone') ? 'ok' : 'error', text });
    }
    return reply.redirect(back, 303);
  });

  app.post('/challenge', async (req, reply) => {
    const ids = fields(req.body, 'ids').filter(isId).slice(0, MAX_IDS);
    const back = localPath(field(req.body, 'back'));
    let sent = 0;
    let failed = 0;
    const secret = readSecret(paths);
    const { sendChallenge } = await import('../agent/challenge/challenge.js');
    for (const id of ids) {
      const h = await store.get(id);
      if (!h || h.state !== 'held' || !canAskNow(kindOf(h)) || addressKey(h.sender) === undefined) continue;
      if (!(await store.claimAskNow(h.id, claimNote({ at: now(), pid: process.pid, host: hostname() })))) continue;
      try {
        await sendChallenge({ config, secret, held: h, now: now() });
        await store.challengeSent(h.id);
        sent += 1;
      } catch (err) {
        await store.setChallenge(h.id, 'failed', err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'transport error');
        failed += 1;
      }
    }
    say(req, sent > 0 || failed > 0
      ? { kind: failed === 0 ? 'ok' : 'error', text: `${sent} confirmation request(s) sent${failed > 0 ? `, ${failed} failed` : ''}` }
      : { kind: 'error', text: 'None of these can be asked now (a request was sent already, or the sender cannot be written to).' });
    return reply.redirect(back, 303);
  });

  app.get<{ Params: { id: string } }>('/message/:id', async (req, reply) => {
    const held = await heldOr404(req.params.id);
    const p = readPlace(req.query, 'messages');
    const raw = held.state === 'held' || held.state === 'releasing' ? await store.raw(held.id) : undefined;
    const k = kindOf(held);
    const from = headerAddress(held.fromHeader);
    const view: Record<string, unknown> = {
      title: held.subject || '(no subject)',
      navHeld: true,
      m: heldRow(held, config.pending.lifetime),
      // Opened from the sender view: back there (the sender is only the neighbours' filter).
      back: placeUrl(p.view === 'senders' ? { ...p, sender: undefined } : p),
      listed: held.sender === '' ? 'nothing (no envelope sender)' : plain(held.senderKey),
      fromDiffers: from !== undefined && from !== held.senderKey,
      fromAddress: from ?? '',
      risky: riskyToBlock(k, held),
      askNow: canAskNow(k) && addressKey(held.sender) !== undefined,
      inTrash: held.state === 'deleted' && (await store.heads([held.id], 1)).size > 0,
    };
    if (!raw) {
      return page(reply, 'message', { ...view, gone: held.state === 'releasing' ? 'being released' : held.state }, req.vouchSession);
    }
    const { filter } = await filterOf(p);
    const near = await store.neighbours(held, filter);
    const qs = placeQuery(p);
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
        problem = `This message could not be decoded (${err instanceof ParseError ? err.message : 'parser error'}); its body is shown undecoded.`;
      }
    }
    const wantHtml = (req.query as Record<string, unknown>)['view'] === 'html' && parsed?.html !== undefined;
    let body = parsed ? parsed.text ?? '' : bytesToText(raw.subarray(headers.bodyOffset, headers.bodyOffset + TEXT_LIMIT));
    const cut = body.length > TEXT_LIMIT;
    if (cut) body = body.slice(0, TEXT_LIMIT);
    const sep = qs === '' ? '?' : '&';
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
      textHref: `/message/${held.id}${qs}`,
      htmlHref: `/message/${held.id}${qs}${sep}view=html`,
      attachments: (parsed?.attachments ?? []).map((a, i) => ({
        name: plain(cleanText(a.filename, 200)),
        type: cleanText(a.contentType, 100),
        size: fmtSize(a.size),
        href: `/message/${held.id}/attachment/${i}`,
      })),
      truncated: parsed?.truncated ?? false,
      prevHref: near.prev ? `/message/${near.prev}${qs}` : undefined,
      nextHref: near.next ? `/message/${near.next}${qs}` : undefined,
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
    const search = text(q['q'], 200);
    const count = await store.countEntries(list, search);
    const pages = Math.max(1, Math.ceil(count / LIST_PAGE_SIZE));
    const current = Math.min(pages, Math.max(1, Math.floor(Number(text(q['page'], 10) ?? '1')) || 1));
    const rows = await store.listEntries(list, { ...(search ? { search } : {}), limit: LIST_PAGE_SIZE, offset: (current - 1) * LIST_PAGE_SIZE });
    const [white, black] = [await store.countPatterns('white'), await store.countPatterns('black')];
    const href = (p: number) => `/lists?list=${list}${search ? `&q=${encodeURIComponent(search)}` : ''}${p > 1 ? `&page=${p}` : ''}`;
    const draft = req.vouchSession?.draft;
    if (req.vouchSession) req.vouchSession.draft = undefined;
    return page(reply, 'lists', {
      title: list === 'white' ? 'Whitelist' : 'Blacklist',
      navLists: true,
      list,
      listName: list === 'white' ? 'whitelist' : 'blacklist',
      white: list === 'white',
      whiteCount: white,
      blackCount: black,
      search: search ?? '',
      count,
      draft: draft ?? '',
      rows: rows.map((r) => ({ pattern: r.pattern, added: fmtTime(r.added), why: provenance(r.source, r.note), href: r.note !== '' && isId(r.note) ? `/message/${r.note}` : undefined })),
      page: current,
      pages,
      prev: current > 1 ? href(current - 1) : undefined,
      next: current < pages ? href(current + 1) : undefined,
      back: href(current),
    }, req.vouchSession);
  });

  app.post('/lists/add', async (req, reply) => {
    const list: ListName = field(req.body, 'list') === 'black' ? 'black' : 'white';
    const typed = (field(req.body, 'patterns') ?? '').slice(0, 100_000);
    const lines = typed.split(/\r?\n/).map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '');
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
    else if (bad.length > 0) {
      say(req, { kind: 'error', text: `Nothing added: ${bad.slice(0, 3).join('; ')}${bad.length > 3 ? ` (and ${bad.length - 3} more)` : ''}` });
      // What was typed stays in the box, to be corrected rather than typed again.
      if (req.vouchSession) req.vouchSession.draft = typed;
    } else {
      const { change, undo } = await addToList(store, list, parsed, now());
      const n = change.added.length;
      const matching = list === 'white' && n > 0 ? await store.heldMatching(change.added.map((e) => e.key), MAX_ALL) : [];
      say(req, {
        kind: 'ok',
        text: `${n} added to the ${name}${n < parsed.length ? ` (${parsed.length - n} already there)` : ''}`,
        ...(undo !== undefined ? { undo } : {}),
        ...(matching.length > 0 ? { offer: { patterns: change.added.map((e) => e.pattern), n: matching.length } } : {}),
      });
    }
    return reply.redirect(`/lists?list=${list}`, 303);
  });

  app.post('/lists/release', async (req, reply) => {
    const keys: string[] = [];
    for (const p of fields(req.body, 'patterns').slice(0, 10_000)) {
      try {
        keys.push(parsePattern(p).key);
      } catch {
        /* not a pattern: matches nothing */
      }
    }
    const ids = await store.heldMatching(keys, MAX_ALL);
    if (ids.length === 0) say(req, { kind: 'error', text: 'No held message matches those patterns now.' });
    else {
      const res = await decideHeld(store, config, ids, 'release', now());
      say(req, { kind: 'ok', text: res.summary, ...(res.undo !== undefined ? { undo: res.undo } : {}) });
    }
    return reply.redirect(localPath(field(req.body, 'back'), '/lists'), 303);
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
    else {
      const { removed, undo } = await removeFromList(store, list, parsed, now());
      say(req, { kind: removed > 0 ? 'ok' : 'error', text: `${removed} removed from the ${name}`, ...(undo !== undefined ? { undo } : {}) });
    }
    return reply.redirect(localPath(field(req.body, 'back'), `/lists?list=${list}`), 303);
  });

  // ---- activity

  app.get('/activity', async (req, reply) => {
    const today = now();
    const since = dayOf(today - 29 * 86_400_000);
    const chart = activityChart(await store.activity(since), today, 30);
    // The store's events and the direct deliveries of the journal (the whitelisted path never
    // opens the store), merged by time; the last LOG_KEEP of them.
    const direct = recentDeliveries(store.home, LOG_KEEP).map((d, i) => ({ id: -i, at: d.at, kind: 'delivered', ref: '', sender: '', detail: d.name }));
    const merged = [...(await store.events(LOG_KEEP)), ...direct].sort((a, b) => b.at - a.at).slice(0, LOG_KEEP);
    const log = merged.map((e) => ({
      at: fmtTime(e.at),
      kind: e.kind,
      cls: `ev-${e.kind.replace(/[^a-z]+/g, '-')}`,
      sender: plain(e.sender),
      detail: plain(cleanText(e.detail, 200)),
      href: isId(e.ref) ? `/message/${e.ref}` : undefined,
    }));
    return page(reply, 'activity', { title: 'Activity', navActivity: true, chart, log, logMax: LOG_KEEP }, req.vouchSession);
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

function heldRow(h: Held, lifetime: number): Record<string, unknown> {
  const ch = challengeText(h.challenge, plain(h.challengeNote));
  const k = kindOf(h);
  return {
    id: h.id,
    href: `/message/${h.id}`,
    received: fmtTime(h.received),
    sender: plain(h.sender) || '<>',
    senderKey: h.senderKey,
    from: plain(h.fromHeader),
    subject: plain(h.subject) || '(no subject)',
    size: fmtSize(h.size),
    reason: plain(h.reason),
    kind: k.label,
    kindKey: k.key,
    detail: detail(h, k, lifetime, fmtTime),
    challenge: ch.text,
    challengeClass: ch.cls,
    suspect: h.suspect,
    signals: describeSignals(h.signals).map((l) => plain(l)),
    signalsShort: plain(signalSummary(h.signals)),
    classifier: describeSignal(h.signals)?.text,
  };
}

/** Badges from a message's top-level Content-Type (the first bytes of its body, never all of it). */
function badges(head: Buffer | undefined): { attachment: boolean; html: boolean } {
  if (!head) return { attachment: false, html: false };
  const ct = (readHeaders(head, head.length).get('content-type') ?? '').toLowerCase();
  return { attachment: /^\s*multipart\/mixed/.test(ct), html: /^\s*(text\/html|multipart\/(alternative|related))/.test(ct) };
}

/** Why a list entry is there, in words. */
function provenance(source: string, note: string): string {
  const from = note === '' ? '' : ` (${plain(note)})`;
  switch (source) {
    case 'confirmation':
      return `the sender confirmed${from}`;
    case 'release':
      return `allowed from the held mail${from}`;
    case 'block':
      return `blocked from the held mail${from}`;
    case 'send':
      return `you wrote to them${from}`;
    case 'hand':
      return 'added by hand';
    case 'import':
      return 'imported';
    default:
      return source === '' ? 'before vouch kept track' : plain(source);
  }
}

// ---- where the user is: view, search, filter, sender, page and page size, carried in URLs and
// forms so every action and every message's back link returns to the same place.

interface Place {
  readonly view: 'senders' | 'messages';
  readonly q?: string | undefined;
  readonly why?: string | undefined;
  readonly reason?: string | undefined;
  readonly sender?: string | undefined;
  readonly page: number;
  readonly size: number;
}

function readPlace(source: unknown, fallback: Place['view']): Place {
  const o = (source ?? {}) as Record<string, unknown>;
  const view = o['view'] === 'senders' ? 'senders' : o['view'] === 'messages' ? 'messages' : fallback;
  const size = Number(text(o['size'], 4));
  const sender = typeof o['sender'] === 'string' ? o['sender'].trim().toLowerCase().slice(0, 300) : undefined;
  return {
    view,
    q: text(o['q'], 200),
    why: text(o['why'], 60),
    reason: text(o['reason'], 200),
    sender: sender === undefined || (sender === '' && o['sender'] !== '') ? undefined : sender,
    page: Math.max(1, Math.min(1_000_000, Math.floor(Number(text(o['page'], 10) ?? '1')) || 1)),
    size: (PAGE_SIZES as readonly number[]).includes(size) ? size : PAGE_SIZE,
  };
}

function placeParams(p: Place, withView: boolean): [string, string][] {
  const out: [string, string][] = [];
  if (withView) out.push(['view', p.view]);
  if (p.q) out.push(['q', p.q]);
  if (p.why) out.push(['why', p.why]);
  if (p.reason) out.push(['reason', p.reason]);
  if (p.sender !== undefined) out.push(['sender', p.sender]);
  if (p.size !== PAGE_SIZE) out.push(['size', String(p.size)]);
  if (p.page > 1) out.push(['page', String(p.page)]);
  return out;
}

function placeUrl(p: Place): string {
  const qs = placeParams(p, false).map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return `${p.view === 'senders' ? '/' : '/messages'}${qs ? `?${qs}` : ''}`;
}

/** The place as a query string for a message's URL (its back link and neighbours). */
function placeQuery(p: Place): string {
  const qs = placeParams(p, p.view !== 'messages').map(([k, v]) => `${k}=${encodeURIComponent(v)}`).join('&');
  return qs ? `?${qs}` : '';
}

/** The place as hidden form fields ("all matching" acts on this filter). */
function placeFields(p: Place): { name: string; value: string }[] {
  return placeParams(p, true).filter(([k]) => k !== 'page' && k !== 'size').map(([name, value]) => ({ name, value }));
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
