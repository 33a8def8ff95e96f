// Real-browser tests of forcelink's security-critical browser flows, in headless Chromium
// (Debian's /usr/bin/chromium driven by playwright-core), against a `forcelink dev` with its
// simulated Salesforce org. infra/browser/run.sh installs what is missing, starts forcelink
// and runs this file with node's test runner; run it that way.
//
// What it checks:
//   1. Connect (`forcelink connect`): /oauth/start without a ticket is refused (403); the
//      ticket URL sets a `__Host-flk-…` cookie (Secure, HttpOnly, SameSite=Lax, Path=/, 10 min)
//      that Chromium stores and sends back after the simulated login and consent; the same
//      callback URL opened in another browser context (no cookie) is refused with 403 while the
//      flow is still live, and the flow still finishes in the first browser ("Salesforce
//      connected", cookie cleared); the used ticket answers 410; every forcelink page of the
//      flow carries a CSP with `frame-ancestors 'none'`.
//   2. "Login with Salesforce": /sso/login sets a `SameSite=None; Partitioned` cookie; after the
//      login the callback's form_post page submits itself under its own CSP (script allowed by
//      its sha256, form-action = the platform's origin, no violation reported), the platform
//      (a loopback HTTP server here) receives `token` and `next` by POST, and the token verifies
//      with Node's crypto against /.well-known/jwks.json (Ed25519), with the expected claims.
//   3. Framing: from a fake Salesforce Lightning tab (https://acme.lightning.force.com, served
//      by page.route) the framed SSO flow completes inside the iframe (CHIPS cookie, platform
//      POST); from https://evil.example the token page is blocked by `frame-ancestors` and the
//      platform receives nothing; connect pages are blocked in a frame from any parent, and a
//      connect asked for inside a frame is refused at its first hop (Sec-Fetch-Dest: iframe: a
//      redirect's frame headers would not stop it) and does not use up its ticket.
//
// Environment (set by run.sh): FORCELINK_BIN, FORCELINK_DATA_DIR, FORCELINK_PUBLIC_URL (the
// dev server, http://localhost:PORT), FORCELINK_SIM_CA (the simulator's CA file),
// BROWSER_PLATFORM_PORT, BROWSER_SITE_TOML (the applied site), CHROMIUM (default
// /usr/bin/chromium).
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const { execFileSync } = require('node:child_process');
const { chromium } = require('playwright-core');

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set: run infra/browser/run.sh`);
    return v;
};
const BIN = env('FORCELINK_BIN');
const BASE = env('FORCELINK_PUBLIC_URL').replace(/\/$/, '');
const SIM_CA = env('FORCELINK_SIM_CA');
const PLATFORM_PORT = Number(env('BROWSER_PLATFORM_PORT'));
const PLATFORM = `http://127.0.0.1:${PLATFORM_PORT}`;
const SITE_TOML = fs.readFileSync(env('BROWSER_SITE_TOML'), 'utf8');
const SITE = SITE_TOML.match(/^id = "([^"]+)"/m)[1];
const LIGHTNING_TAB = SITE_TOML.match(/^tabs\.lightning = "([^"]+)"/m)[1];
const CLASSIC_TAB = SITE_TOML.match(/^tabs\.classic = "([^"]+)"/m)[1];
const EVIL = 'https://evil.example/';
const USER = 'admin@acme.example'; // a user of the simulated org (its roster has isQstreamUser__c)
const SUBMIT_SCRIPT = 'document.forms[0].submit();'; // the form_post page's one inline script
const TIMEOUT = 15_000; // one browser step
const TEST_TIMEOUT = 90_000; // one test

// Without --disable-background-networking and friends, Chromium's own connections to Google
// are refused by closed networks and slow everything down.
const CHROMIUM_ARGS = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

let browser;
const state = { org: null, instance: null }; // what the connect test learned

// ---------------------------------------------------------------- helpers

/// `forcelink connect SITE`: the single-use URL (on FORCELINK_PUBLIC_URL).
function connectUrl() {
    const out = execFileSync(BIN, ['connect', SITE], { encoding: 'utf8' });
    const url = out.split('\n').map((l) => l.trim()).find((l) => l.startsWith(`${BASE}/oauth/start?`));
    assert.ok(url, `forcelink connect printed no ${BASE}/oauth/start URL:\n${out}`);
    assert.match(url, /[?&]ticket=[^&]+/);
    return url;
}

/// A fresh context (its own cookie jar). `local-network-access`: the fake Salesforce tab is a
/// "public" page (served by page.route), and Chromium blocks public pages from loading
/// loopback addresses (forcelink, the simulator, the platform) unless that is granted.
async function newContext() {
    const ctx = await browser.newContext({ ignoreHTTPSErrors: true, permissions: ['local-network-access'] });
    ctx.setDefaultTimeout(TIMEOUT);
    // CSP violations in any frame, reported to the console (where `watch` collects them).
    await ctx.addInitScript(() => {
        document.addEventListener('securitypolicyviolation', (e) =>
            console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || 'inline'} (${e.documentURI})`));
    });
    return ctx;
}

/// Records a page's responses (all frames, redirects included) and console messages.
function watch(page) {
    const log = { responses: [], console: [], pending: [] };
    page.on('response', (r) => {
        const entry = { url: r.url(), status: r.status(), headers: {}, request: r.request() };
        log.responses.push(entry);
        log.pending.push(r.allHeaders().then((h) => { entry.headers = h; }, () => {}));
    });
    page.on('console', (m) => log.console.push(`${m.type()}: ${m.text()}`));
    // The responses whose URL starts with `prefix`, headers read.
    log.from = async (prefix) => {
        await Promise.all(log.pending);
        return log.responses.filter((r) => r.url.startsWith(prefix));
    };
    log.cspViolations = () => log.console.filter((m) => /CSP violation|Content Security Policy|Refused to/i.test(m));
    log.framingBlocked = () => log.console.filter((m) => m.includes(`Framing '${BASE}/' violates`));
    return log;
}

function csp(headers) {
    const text = headers['content-security-policy'];
    assert.ok(text, 'the response has no Content-Security-Policy header');
    const d = {};
    for (const part of text.split(';')) {
        const [name, ...values] = part.trim().split(/\s+/);
        if (name) d[name] = values;
    }
    return d;
}

function hostCookies(cookies) {
    return cookies.filter((c) => c.name.startsWith('__Host-flk-'));
}

/// The fake page `parentUrl` serves: one iframe to `src`.
async function serveParent(ctx, parentUrl, src) {
    await ctx.route(parentUrl, (route) =>
        route.fulfill({
            contentType: 'text/html; charset=utf-8',
            body: `<!doctype html><title>parent</title><h1>Salesforce tab (fake)</h1><iframe id="fl" src="${src}" width="900" height="650"></iframe>`,
        }));
}

/// The login and consent page of the simulated org, in `scope` (a page or a frame locator).
async function allow(scope) {
    await scope.locator('select[name="username"]').selectOption(USER);
    await scope.locator('#approve').click();
}

/// `promise`, or a failure after TIMEOUT.
function within(promise, what) {
    let timer;
    const late = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: nothing after ${TIMEOUT} ms`)), TIMEOUT); });
    return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

function b64url(text) {
    return Buffer.from(text, 'base64url');
}

// ---------------------------------------------------------------- the fake platform

/// Receives the login POSTs (`token`, `next`), as the platform's SSO endpoint would.
const platform = {
    posts: [],
    waiters: [],
    server: null,
    next(timeout = TIMEOUT) {
        return new Promise((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('the platform received no login POST')), timeout);
            this.waiters.push((p) => { clearTimeout(timer); resolve(p); });
        });
    },
};

function startPlatform() {
    platform.server = http.createServer((req, res) => {
        let body = '';
        req.on('data', (d) => { body += d; });
        req.on('end', () => {
            if (req.method === 'POST' && req.url === '/sso/salesforce') {
                const post = { headers: req.headers, fields: Object.fromEntries(new URLSearchParams(body)), keys: [...new URLSearchParams(body).keys()] };
                platform.posts.push(post);
                const w = platform.waiters.shift();
                if (w) w(post);
            }
            res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
            res.end('<!doctype html><title>platform</title><h1>Platform: signed in</h1>');
        });
    });
    return new Promise((resolve) => platform.server.listen(PLATFORM_PORT, '127.0.0.1', resolve));
}

// ---------------------------------------------------------------- setup

before(async () => {
    await startPlatform();
    browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', args: CHROMIUM_ARGS });
    console.log(`# Chromium ${browser.version()}, forcelink ${BASE}, platform ${PLATFORM}`);
});

after(async () => {
    if (browser) await Promise.race([browser.close(), new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (platform.server) platform.server.close();
});

// ---------------------------------------------------------------- 1. connect

test('connect: /oauth/start without a ticket is refused (403), sets no cookie', { timeout: TEST_TIMEOUT }, async () => {
    const ctx = await newContext();
    const page = await ctx.newPage();
    const resp = await page.goto(`${BASE}/oauth/start?site=${SITE}&connection=production`);
    assert.equal(resp.status(), 403);
    assert.equal(await page.locator('h1').textContent(), 'This link needs an invitation');
    assert.deepEqual(csp(await resp.allHeaders())['frame-ancestors'], ["'none'"]);
    assert.deepEqual(hostCookies(await ctx.cookies()), []);
    await ctx.close();
});

test('connect: the ticket flow is bound to the starting browser by a __Host- cookie', { timeout: TEST_TIMEOUT }, async () => {
    const url = connectUrl();
    const ctx = await newContext();
    const page = await ctx.newPage();
    const log = watch(page);

    const authorize = await page.goto(url);
    assert.equal(authorize.status(), 200, 'the simulated authorize page');
    state.instance = new URL(authorize.url()).origin; // the simulator (login host = instance)
    assert.equal(state.instance.startsWith('https://'), true, authorize.url());

    // The 302 from /oauth/start set the cookie, and Chromium stored it as sent.
    const start = await log.from(`${BASE}/oauth/start`);
    assert.equal(start.length, 1);
    assert.equal(start[0].status, 302);
    const setCookie = start[0].headers['set-cookie'];
    assert.match(setCookie, /^__Host-flk-[\w-]{12}=[\w-]+; Max-Age=600; Path=\/; Secure; HttpOnly; SameSite=Lax$/);
    const cookies = hostCookies(await ctx.cookies(BASE));
    assert.equal(cookies.length, 1, JSON.stringify(await ctx.cookies()));
    const [c] = cookies;
    assert.equal(c.name, setCookie.split('=')[0]);
    assert.equal(c.domain, new URL(BASE).hostname);
    assert.equal(c.path, '/');
    assert.equal(c.httpOnly, true);
    assert.equal(c.secure, true);
    assert.equal(c.sameSite, 'Lax');
    const ttl = c.expires - Date.now() / 1000;
    assert.ok(ttl > 560 && ttl <= 601, `cookie lifetime ${ttl}s`);

    // Login and consent at the (simulated) Salesforce, which sends the browser back to the
    // callback with a 302. Playwright routes do not see redirects, so the consent POST is
    // routed: performed here, its 302 held while another browser tries the callback URL.
    let seen;
    const callbackSeen = new Promise((resolve) => { seen = resolve; });
    let release;
    const released = new Promise((resolve) => { release = resolve; });
    await page.route((u) => u.origin === state.instance, async (route) => {
        if (route.request().method() !== 'POST') return route.fallback();
        const answer = await route.fetch({ maxRedirects: 0 });
        seen(answer.headers().location);
        await released;
        await route.fulfill({ response: answer });
    });
    const clicked = allow(page); // the click waits for the navigation it starts: not yet
    const callbackUrl = await within(callbackSeen, 'the consent POST');
    assert.ok(callbackUrl.startsWith(`${BASE}/oauth/callback?`), callbackUrl);
    assert.match(callbackUrl, /[?&]code=/);

    // Another browser (no cookie) opening the very same callback URL, while the flow is live.
    const other = await newContext();
    const otherPage = await other.newPage();
    const refused = await otherPage.goto(callbackUrl);
    assert.equal(refused.status(), 403);
    assert.equal(await otherPage.locator('h1').textContent(), 'This sign-in was started somewhere else');
    assert.deepEqual(csp(await refused.allHeaders())['frame-ancestors'], ["'none'"]);
    await other.close();

    // The first browser finishes: its cookie went back with the callback.
    const done = page.waitForURL((u) => u.pathname === '/oauth/callback' && u.origin === BASE);
    release();
    await clicked;
    await done;
    await page.waitForLoadState('load');
    assert.equal(await page.locator('h1').textContent(), 'Salesforce connected');
    const text = await page.locator('main').innerText();
    const org = text.match(/Org: (00D\w{15})/);
    assert.ok(org, text);
    state.org = org[1];
    const callback = await log.from(`${BASE}/oauth/callback`);
    assert.equal(callback.length, 1);
    assert.equal(callback[0].status, 200);
    const sent = await callback[0].request.headerValue('cookie');
    assert.ok(sent && sent.includes(`${c.name}=${c.value}`), `the callback request carried no binding cookie: ${sent}`);
    // The binding is single use: the answer clears the cookie.
    assert.match(callback[0].headers['set-cookie'], new RegExp(`^${c.name}=${c.value}; Max-Age=0;`));
    assert.deepEqual(hostCookies(await ctx.cookies()), []);

    // Every HTML page forcelink served in the flow refuses framing.
    const pages = (await log.from(BASE)).filter((r) => (r.headers['content-type'] || '').startsWith('text/html'));
    assert.ok(pages.length >= 1);
    for (const r of pages) assert.deepEqual(csp(r.headers)['frame-ancestors'], ["'none'"], r.url);
    assert.deepEqual(log.cspViolations(), []);
    await ctx.close();

    // The ticket is now used up.
    const again = await newContext();
    const againPage = await again.newPage();
    const used = await againPage.goto(url);
    assert.equal(used.status(), 410);
    assert.equal(await againPage.locator('h1').textContent(), 'This link was already used');
    assert.deepEqual(csp(await used.allHeaders())['frame-ancestors'], ["'none'"]);
    assert.deepEqual(hostCookies(await again.cookies()), []);
    await again.close();
});

test('directory: the roster sync adds the org\'s users with their Salesforce ids', { timeout: TEST_TIMEOUT }, () => {
    assert.ok(state.org, 'needs the connect test');
    const out = execFileSync(BIN, ['sync', 'run', SITE, 'roster', '--force'], {
        encoding: 'utf8',
        env: { ...process.env, FORCELINK_EXTRA_CA_FILE: SIM_CA, RUST_LOG: 'warn' },
    });
    assert.match(out, /run Succeeded/, out);
    assert.match(out, /added=[1-9]/, out);
});

// ---------------------------------------------------------------- 2. SSO, top level

function expectedAncestors() {
    return [...new Set([new URL(LIGHTNING_TAB).origin, new URL(CLASSIC_TAB).origin, state.instance])].sort();
}

/// Checks the form_post answer of an SSO callback.
function checkFormPostHeaders(headers) {
    const d = csp(headers);
    assert.deepEqual(d['default-src'], ["'none'"]);
    const hash = `'sha256-${crypto.createHash('sha256').update(SUBMIT_SCRIPT).digest('base64')}'`;
    assert.deepEqual(d['script-src'], [hash], 'script-src is exactly the submit script\'s hash');
    assert.deepEqual(d['form-action'], [PLATFORM], 'form-action is the platform\'s origin');
    assert.deepEqual([...d['frame-ancestors']].sort(), expectedAncestors(), 'frame-ancestors: the site\'s Salesforce origins');
    assert.equal(headers['cache-control'], 'no-store');
    assert.equal(headers['referrer-policy'], 'no-referrer');
}

/// Verifies a login token as the platform would, with the JWKS and Node's crypto.
async function verifyToken(token, next) {
    const jwks = await (await fetch(`${BASE}/.well-known/jwks.json`)).json();
    const [h, p, s] = token.split('.');
    assert.ok(h && p && s && token.split('.').length === 3, 'compact JWS');
    const header = JSON.parse(b64url(h));
    assert.equal(header.alg, 'EdDSA');
    const jwk = jwks.keys.find((k) => k.kid === header.kid);
    assert.ok(jwk, `kid ${header.kid} is not in the JWKS`);
    assert.equal(jwk.crv, 'Ed25519');
    const key = crypto.createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
    assert.equal(crypto.verify(null, Buffer.from(`${h}.${p}`), key, b64url(s)), true, 'signature verifies');
    // A verifier that accepts anything would prove nothing: a changed payload must fail.
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(b64url(p)), email: 'mallory@evil.example' })).toString('base64url');
    assert.equal(crypto.verify(null, Buffer.from(`${h}.${forged}`), key, b64url(s)), false, 'a changed payload fails');
    const claims = JSON.parse(b64url(p));
    const now = Math.floor(Date.now() / 1000);
    assert.equal(claims.iss, BASE);
    assert.equal(claims.aud, PLATFORM);
    assert.equal(claims.site, SITE);
    assert.equal(claims.org, state.org);
    assert.match(claims.sf_user, /^005\w{15}$/);
    assert.equal(claims.email, USER);
    assert.equal(claims.next, next);
    assert.ok(claims.exp > now && claims.exp - claims.iat <= 120, `lifetime ${claims.exp - claims.iat}s`);
    assert.ok(claims.jti && claims.sub);
    return claims;
}

test('sso: the form_post page submits itself under its CSP; the platform gets a verifiable token', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(state.org, 'needs the connect test');
    const ctx = await newContext();
    const page = await ctx.newPage();
    const log = watch(page);
    const next = '/courses/42';
    await page.goto(`${BASE}/sso/login?site=${SITE}&next=${encodeURIComponent(next)}`);
    const start = await log.from(`${BASE}/sso/login`);
    assert.equal(start[0].status, 302);
    assert.match(start[0].headers['set-cookie'], /^__Host-flk-[\w-]{12}=[\w-]+; Max-Age=600; Path=\/; Secure; HttpOnly; SameSite=None; Partitioned$/);
    const [c, ...more] = hostCookies(await ctx.cookies());
    assert.ok(c && more.length === 0, JSON.stringify(await ctx.cookies()));
    assert.equal(c.httpOnly, true);
    assert.equal(c.secure, true);
    assert.equal(c.sameSite, 'None');

    const posted = platform.next();
    await allow(page);
    const post = await posted;
    await page.waitForURL(`${PLATFORM}/sso/salesforce`);
    assert.equal(await page.locator('h1').textContent(), 'Platform: signed in');

    const callback = await log.from(`${BASE}/oauth/callback`);
    assert.equal(callback.length, 1);
    assert.equal(callback[0].status, 200);
    checkFormPostHeaders(callback[0].headers);
    assert.ok((await callback[0].request.headerValue('cookie') || '').includes(`${c.name}=${c.value}`), 'the callback carried the cookie');
    assert.deepEqual(log.cspViolations(), [], 'no CSP violation while the page submitted itself');
    assert.deepEqual(hostCookies(await ctx.cookies()), [], 'the binding cookie is cleared');

    assert.deepEqual(post.keys.sort(), ['next', 'token']);
    assert.equal(post.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.equal(post.fields.next, next);
    const claims = await verifyToken(post.fields.token, next);
    console.log(`# login token for ${claims.email} (sub ${claims.sub}, org ${claims.org}); POST Origin: ${post.headers.origin}`);
    await ctx.close();
});

// ---------------------------------------------------------------- 3. framing

test('framing: SSO inside the site\'s Lightning tab completes in the iframe', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(state.org, 'needs the connect test');
    const ctx = await newContext();
    const next = '/courses/7';
    await serveParent(ctx, LIGHTNING_TAB, `${BASE}/sso/login?site=${SITE}&next=${encodeURIComponent(next)}`);
    const page = await ctx.newPage();
    const log = watch(page);
    await page.goto(LIGHTNING_TAB);
    const frame = page.frameLocator('#fl');
    // The cookie is stored in the third-party frame, partitioned under the tab's top-level
    // site (CHIPS), and goes back with the callback (or the flow could not finish).
    await frame.locator('#approve').waitFor();
    const [c] = hostCookies(await ctx.cookies());
    assert.ok(c, 'the SSO cookie was stored in the frame');
    assert.equal(c.sameSite, 'None');
    assert.equal(c.partitionKey, 'https://force.com');

    const posted = platform.next();
    await allow(frame);
    const post = await posted;
    assert.equal(post.fields.next, next);
    await verifyToken(post.fields.token, next);

    const callback = await log.from(`${BASE}/oauth/callback`);
    assert.equal(callback.length, 1);
    assert.equal(callback[0].status, 200);
    checkFormPostHeaders(callback[0].headers);
    assert.deepEqual(log.framingBlocked(), []);
    assert.deepEqual(log.cspViolations(), []);
    const inner = page.frames().find((f) => f !== page.mainFrame());
    await inner.waitForURL(`${PLATFORM}/sso/salesforce`);
    assert.equal(page.url(), LIGHTNING_TAB, 'the tab itself stayed');
    await ctx.close();
});

test('framing: SSO framed by another site never shows the token page, the platform gets nothing', { timeout: TEST_TIMEOUT }, async () => {
    assert.ok(state.org, 'needs the connect test');
    const ctx = await newContext();
    await serveParent(ctx, EVIL, `${BASE}/sso/login?site=${SITE}&next=/courses/9`);
    const page = await ctx.newPage();
    const log = watch(page);
    await page.goto(EVIL);
    const frame = page.frameLocator('#fl');
    // The simulated login page shows in the frame (the simulator does not refuse framing the
    // way Salesforce's login page does); consent there sends the frame to the callback.
    const before = platform.posts.length;
    const answered = page.waitForResponse((r) => r.url().startsWith(`${BASE}/oauth/callback`));
    await allow(frame);
    const callback = await answered;
    assert.equal(callback.status(), 200);
    checkFormPostHeaders(await callback.allHeaders());
    // Chromium refuses to render it: frame-ancestors does not list evil.example.
    await assertFrameBlocked(page, log);
    await page.waitForTimeout(1500);
    assert.equal(platform.posts.length, before, 'the platform received a POST from a frame on another site');
    await ctx.close();
});

/// The iframe ends on Chromium's error page after a frame-ancestors refusal of forcelink.
async function assertFrameBlocked(page, log) {
    const inner = page.frames().find((f) => f !== page.mainFrame());
    // Polled: frame.waitForURL throws on the very navigation failure it would wait for.
    const blocked = () => inner.url().startsWith('chrome-error:') && log.framingBlocked().length > 0;
    for (let i = 0; i < TIMEOUT / 100 && !blocked(); i++) await page.waitForTimeout(100);
    assert.equal(inner.url(), 'chrome-error://chromewebdata/');
    assert.equal(log.framingBlocked().length, 1, `console:\n${log.console.join('\n')}`);
    assert.match(log.framingBlocked()[0], /Content Security Policy directive: "frame-ancestors/);
    const html = await inner.content();
    assert.ok(!html.includes('forcelink') && !html.includes('<form method="post"'), 'forcelink content shows in the frame');
}

test('framing: connect pages are refused in a frame, from any parent', { timeout: TEST_TIMEOUT }, async () => {
    const ticketUrl = connectUrl();
    for (const parent of [LIGHTNING_TAB, EVIL]) {
        // The refusal page of /oauth/start itself.
        {
            const ctx = await newContext();
            await serveParent(ctx, parent, `${BASE}/oauth/start?site=${SITE}`);
            const page = await ctx.newPage();
            const log = watch(page);
            const refused = page.waitForResponse((r) => r.url().startsWith(`${BASE}/oauth/start`));
            await page.goto(parent);
            assert.equal((await refused).status(), 403);
            await assertFrameBlocked(page, log);
            assert.match(log.framingBlocked()[0], /"frame-ancestors 'none'"/);
            await ctx.close();
        }
        // A real ticket: refused at the first hop (Sec-Fetch-Dest: iframe), since a redirect's
        // frame headers would not stop the frame; nothing reaches Salesforce, no cookie is set.
        {
            const ctx = await newContext();
            await serveParent(ctx, parent, ticketUrl);
            const page = await ctx.newPage();
            const log = watch(page);
            const refused = page.waitForResponse((r) => r.url().startsWith(`${BASE}/oauth/start`));
            await page.goto(parent);
            const start = await refused;
            assert.equal(start.status(), 403);
            assert.equal((await start.allHeaders())['set-cookie'], undefined);
            await assertFrameBlocked(page, log);
            assert.deepEqual(hostCookies(await ctx.cookies()), [], 'no cookie from a framed connect');
            await ctx.close();
        }
    }
    // The framed attempts used nothing up: the ticket still starts a flow at the top level.
    const ctx = await newContext();
    const page = await ctx.newPage();
    const resp = await page.goto(ticketUrl);
    assert.equal(resp.status(), 200);
    assert.match(resp.url(), /\/services\/oauth2\/authorize\?/, 'the ticket still leads to Salesforce');
    assert.equal(hostCookies(await ctx.cookies()).length, 1);
    await ctx.close();
});
