/**
 * The web console end to end: headless Chromium (Debian's, through playwright-core)
 * against the real API serving a fresh console build, and a real worker, over the
 * harness's PostgreSQL and Redis. One browser and one stack for the file; each test has
 * its own browser context (cookies, memory) and its own account.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile, readdir, rm, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { call, makeAdmin, signUp } from '../services/api/fixture';
import { droppedResetMail } from '../services/api/mail-drop';
import { horizontalOverflow, launchBrowser, screenshot, seriousViolations, startConsoleStack, type ConsoleStack } from './browser';
import { SECURE_REFRESH_COOKIE } from '../../services/api/cookies';

const PASSWORD = 'correct horse battery staple';
/** Generous: a job's way through queue and worker on a busy 2-core machine. Not a timing assertion. */
const JOB_WAIT_MS = 30_000;

let stack: ConsoleStack;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** Reset mails already read from the mail drop (tests/services/api/mail-drop.ts). */
const seenMails = new Set<string>();

beforeAll(async () => {
  [stack, browser] = await Promise.all([startConsoleStack(), launchBrowser()]);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
  if (stack) await rm(stack.consoleDir, { recursive: true, force: true });
});

afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close();
});

async function newPage(viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ baseURL: stack.api.baseUrl, viewport, acceptDownloads: true });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(JOB_WAIT_MS);
  return page;
}

type Account = { email: string; token: string; userId: string };

/** An account made over the API, signed in through the console's form. */
async function signedIn(page: Page, existing?: Account): Promise<Account> {
  const account = existing ?? (await signUp(stack.api, PASSWORD));
  await page.goto('/');
  await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  await page.getByLabel('Email').fill(account.email);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Jobs' }).waitFor();
  return account;
}

/** Goes to a console page the way its links do, without reloading (a reload is a new session's test of its own). */
async function visit(page: Page, url: string): Promise<void> {
  await page.evaluate(`history.pushState(null, '', ${JSON.stringify(url)}); dispatchEvent(new PopStateEvent('popstate'))`);
}

function navLink(page: Page, name: string) {
  return page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });
}

/** Marks the document; still marked later means the page was never reloaded. */
async function markDocument(page: Page): Promise<void> {
  await page.evaluate('window.consoleTestMarker = true');
}

async function stillSameDocument(page: Page): Promise<boolean> {
  return page.evaluate<boolean>('window.consoleTestMarker === true');
}

/** Uploads on the Files page; returns the short id the file pickers show beside the name. */
async function uploadThroughConsole(page: Page, name: string, content: Buffer | string): Promise<string> {
  await navLink(page, 'Files').click();
  await page.getByLabel('File to upload').setInputFiles({ name, mimeType: 'text/plain', buffer: Buffer.from(content) });
  await page.getByRole('button', { name: 'Upload', exact: true }).click();
  await page.getByRole('status').filter({ hasText: `Uploaded ${name}` }).waitFor();
  const id = await page.locator('li[data-file-id]', { hasText: name }).first().getAttribute('data-file-id');
  return (id ?? '').slice(-8);
}

/**
 * Waits until `expression` holds in the page. page.waitForFunction polls by evaluating a string
 * inside the page, which the console's CSP (no unsafe-eval) refuses; page.evaluate is not subject to it.
 */
async function untilInPage(page: Page, expression: string): Promise<void> {
  for (let polls = 0; polls < 200; polls += 1) {
    if (await page.evaluate<boolean>(expression)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`never held in the page: ${expression}`);
}

/** A job of the token's account that failed for good (its file's bytes are gone from the object store): a dead letter. */
async function deadLetteredJob(token: string): Promise<string> {
  const upload = await call<{ id: string }>(stack.api, '/v1/files', { token, body: 'doomed', headers: { 'content-type': 'text/plain', 'x-file-name': 'doomed.txt' } });
  for (const file of await readdir(stack.api.env.OBJECT_STORE_DIR ?? '', { recursive: true, withFileTypes: true })) {
    if (file.isFile() && file.name.includes(upload.body.id)) await unlink(path.join(file.parentPath, file.name));
  }
  const doomed = await call<{ id: string }>(stack.api, '/v1/jobs', { token, json: { type: 'file.checksum', input: { fileId: upload.body.id }, maxAttempts: 1 } });
  expect(doomed.status).toBe(202);
  for (;;) {
    const { body } = await call<{ status: string }>(stack.api, `/v1/jobs/${doomed.body.id}`, { token });
    if (body.status === 'failed') return doomed.body.id;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The server's session behind the browser's refresh cookie: the one a reload would restore. */
async function browserSession(context: BrowserContext): Promise<string> {
  const cookie = (await context.cookies()).find((candidate) => candidate.name === SECURE_REFRESH_COOKIE.name)?.value ?? '';
  const { rows } = await stack.api.db.query<{ session_id: string }>('SELECT session_id FROM refresh_tokens WHERE token_hash = $1', [createHash('sha256').update(cookie).digest()]);
  if (!rows[0]) throw new Error('the browser holds no refresh cookie of a session');
  return rows[0].session_id;
}

async function sessionEnded(sessionId: string): Promise<boolean> {
  const { rows } = await stack.api.db.query<{ ended: boolean }>('SELECT revoked_at IS NOT NULL AS ended FROM sessions WHERE id = $1', [sessionId]);
  return rows[0]?.ended ?? true;
}

async function storedTokens(page: Page): Promise<{ local: number; session: number }> {
  return page.evaluate<{ local: number; session: number }>('({ local: localStorage.length, session: sessionStorage.length })');
}

describe('web console', () => {
  it('is served at its pages with cacheable assets and a strict CSP, shadowing nothing of the API', async () => {
    const home = await fetch(`${stack.api.baseUrl}/`);
    const html = await home.text();
    expect(home.status).toBe(200);
    expect(home.headers.get('content-type')).toMatch(/^text\/html/);
    expect(home.headers.get('cache-control')).toBe('no-cache');
    const csp = home.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    // No inline script: everything the page runs comes from /assets.
    expect([...html.matchAll(/<script\b[^>]*>/g)].map((m) => m[0]).every((tag) => /src="\/assets\//.test(tag))).toBe(true);

    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1] ?? '';
    const script = await fetch(`${stack.api.baseUrl}${asset}`);
    expect(script.status).toBe(200);
    expect(script.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');

    for (const page of ['/jobs/0b0ad3c1-5a1e-4c57-9c1b-0c3c0a4f5e6d', '/submit', '/files', '/admin', '/sign-in', '/register', '/forgot-password', '/reset']) {
      const response = await fetch(`${stack.api.baseUrl}${page}`);
      expect({ page, status: response.status, body: await response.text(), cacheControl: response.headers.get('cache-control'), csp: response.headers.get('content-security-policy') }).toEqual({
        page,
        status: 200,
        body: html,
        cacheControl: 'no-cache',
        csp,
      });
    }
    expect((await call(stack.api, '/v1/jobs')).status).toBe(401);
    expect((await call(stack.api, '/healthz')).status).toBe(200);
    expect((await call(stack.api, '/openapi.json')).status).toBe(200);
    expect((await call(stack.api, '/docs')).status).toBe(200);
    for (const missing of ['/assets/nothing.js', '/nothing', '/files/x']) {
      const response = await call(stack.api, missing);
      expect({ missing, status: response.status, type: response.headers.get('content-type') }).toEqual({ missing, status: 404, type: expect.stringMatching(/problem\+json/) });
    }
  });

  it('renders the API document in Swagger UI at /docs: every operation, and no error box about the document', async () => {
    const document = (await call<{ paths: Record<string, Record<string, unknown>> }>(stack.api, '/openapi.json')).body;
    const operations = Object.values(document.paths).reduce((count, item) => count + Object.keys(item).length, 0);
    const page = await newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto('/docs');
    await page.locator('.opblock').first().waitFor();
    expect(await page.locator('.opblock').count()).toBe(operations);
    // Swagger UI lists what it could not make of the document (a wrong jsonSchemaDialect, a 3.2 keyword) in this box.
    expect(await page.locator('.errors-wrapper').count()).toBe(0);
    expect(await page.locator('.info .title').innerText()).toMatch(/OAS 3\.1/);
    expect(pageErrors).toEqual([]);
  });

  it('signs in, uploads a file, submits a job from the generated form and watches it succeed without reloading; no token in web storage', async () => {
    const page = await newPage();
    await signedIn(page);
    await markDocument(page);
    const content = `hello console ${randomBytes(4).toString('hex')}\n`;
    const helloId = await uploadThroughConsole(page, 'hello.txt', content);
    await screenshot(page, 'files');

    await page.getByRole('link', { name: 'Use in a job' }).click();
    await page.getByRole('heading', { name: 'Submit a job' }).waitFor();
    await page.getByLabel('Job type').selectOption('file.checksum');
    await page.getByLabel('fileId: choose one of your uploads').selectOption({ label: `hello.txt (${helloId})` });
    await page.getByLabel('algorithm').selectOption({ label: 'sha256' });
    await screenshot(page, 'submit');
    await page.getByRole('button', { name: 'Submit job' }).click();

    await page.getByRole('heading', { name: 'Job file.checksum' }).waitFor();
    await page.locator('.toolbar .status', { hasText: 'succeeded' }).waitFor();
    const digest = createHash('sha256').update(content).digest('hex');
    await page.getByLabel('Result').filter({ hasText: digest }).waitFor();
    await page.locator('.events li', { hasText: 'succeeded' }).waitFor();
    await screenshot(page, 'job');
    expect(await stillSameDocument(page)).toBe(true);
    expect(await storedTokens(page)).toEqual({ local: 0, session: 0 });
  });

  it('downloads a result file', async () => {
    const page = await newPage();
    await signedIn(page);
    const content = 'compress me '.repeat(200);
    const bigId = await uploadThroughConsole(page, 'big.txt', content);
    await navLink(page, 'Submit').click();
    await page.getByLabel('Job type').selectOption('file.compress');
    await page.getByLabel('fileId: choose one of your uploads').selectOption({ label: `big.txt (${bigId})` });
    await page.getByRole('button', { name: 'Submit job' }).click();
    const downloadButton = page.getByRole('button', { name: 'Download result file' });
    await downloadButton.waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), downloadButton.click()]);
    const saved = await download.path();
    expect(gunzipSync(await readFile(saved)).toString('utf8')).toBe(content);
  });

  it('submits a fan-out job over several uploads and shows its tasks complete, live', async () => {
    const page = await newPage();
    await signedIn(page);
    await markDocument(page);
    const contents = ['alpha\n', 'beta\n', 'gamma\n'];
    for (const [index, content] of contents.entries()) await uploadThroughConsole(page, `part-${index}.txt`, content);
    await navLink(page, 'Submit').click();
    await page.getByLabel('Job type').selectOption('files.checksum');
    for (let index = 0; index < contents.length; index += 1) await page.getByRole('group', { name: 'fileIds: your uploads' }).getByLabel(`part-${index}.txt`).check();
    await page.getByRole('button', { name: 'Submit job' }).click();

    await page.getByRole('heading', { name: 'Job files.checksum' }).waitFor();
    const tasks = page.getByRole('region', { name: 'Tasks' });
    await tasks.locator('[data-status="total"] .count', { hasText: String(contents.length) }).waitFor();
    await tasks.locator('[data-status="succeeded"] .count', { hasText: String(contents.length) }).waitFor();
    await page.locator('.toolbar .status', { hasText: 'succeeded' }).waitFor();
    expect(await tasks.locator('tbody tr').count()).toBe(contents.length);
    expect(await tasks.locator('tbody .status', { hasText: 'succeeded' }).count()).toBe(contents.length);
    // The status comes with the event itself, the progress with the job read right after it.
    await page.locator('.toolbar progress[value="100"]').waitFor();
    await screenshot(page, 'fan-out');
    await page.getByRole('button', { name: 'Download result file' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download result file' }).click()]);
    const manifest = (await readFile(await download.path())).toString('utf8');
    for (const content of contents) expect(manifest).toContain(createHash('sha256').update(content).digest('hex'));
    expect(await stillSameDocument(page)).toBe(true);
  });

  it('keeps the job list current from one event stream', async () => {
    const page = await newPage();
    const { token } = await signedIn(page);
    await page.getByRole('status').filter({ hasText: 'Live' }).waitFor();
    await markDocument(page);
    const submitted = await call<{ id: string }>(stack.api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'from the API' } } });
    expect(submitted.status).toBe(202);
    const row = page.locator(`tr[data-job-id="${submitted.body.id}"]`);
    await row.locator('.status', { hasText: 'succeeded' }).waitFor();
    await screenshot(page, 'jobs');
    expect(await stillSameDocument(page)).toBe(true);
  });

  it('cancels a running job and retries it from the job page', async () => {
    const page = await newPage();
    const { token } = await signedIn(page);
    const submitted = await call<{ id: string }>(stack.api, '/v1/jobs', { token, json: { type: 'sleep', input: { ms: 600_000 } } });
    await visit(page, `/jobs/${submitted.body.id}`);
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await page.locator('.toolbar .status', { hasText: 'cancelled' }).waitFor();
    await page.getByRole('button', { name: 'Retry job' }).click();
    await page.getByRole('button', { name: 'Cancel job' }).waitFor();
    expect((await call<{ status: string }>(stack.api, `/v1/jobs/${submitted.body.id}`, { token })).body.status).toMatch(/^(queued|running)$/);
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await page.locator('.toolbar .status', { hasText: 'cancelled' }).waitFor();
  });

  it('waits out a read refused for a moment and shows the job, with no error', async () => {
    const page = await newPage();
    const { token } = await signedIn(page);
    const job = await call<{ id: string }>(stack.api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: 'read twice' } } });
    let refusals = 0;
    await page.route(`**/v1/jobs/${job.body.id}`, async (route) => {
      if (route.request().method() !== 'GET' || refusals > 0) return route.continue();
      refusals += 1;
      const body = JSON.stringify({ type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'at most 2 such reads at once' });
      return route.fulfill({ status: 429, headers: { 'content-type': 'application/problem+json', 'retry-after': '1' }, body });
    });
    await visit(page, `/jobs/${job.body.id}`);
    await page.getByLabel('Result').waitFor();
    expect(refusals).toBe(1);
    expect(await page.getByRole('alert').count()).toBe(0);
  });

  it('shows a refused write at once and does not send it twice', async () => {
    const page = await newPage();
    const { token } = await signedIn(page);
    const submitted = await call<{ id: string }>(stack.api, '/v1/jobs', { token, json: { type: 'sleep', input: { ms: 600_000 } } });
    let cancels = 0;
    await page.route(`**/v1/jobs/${submitted.body.id}/cancel`, async (route) => {
      cancels += 1;
      const body = JSON.stringify({ type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'rate limit exceeded' });
      return route.fulfill({ status: 429, headers: { 'content-type': 'application/problem+json', 'retry-after': '1' }, body });
    });
    await visit(page, `/jobs/${submitted.body.id}`);
    await page.getByRole('button', { name: 'Cancel job' }).click();
    await page.getByRole('alert').locator('.problem-title', { hasText: 'Too Many Requests' }).waitFor();
    // Past the Retry-After: a write was never sent again on its own.
    await page.waitForTimeout(1_500);
    expect(cancels).toBe(1);
    await call(stack.api, `/v1/jobs/${submitted.body.id}/cancel`, { token, method: 'POST' });
  });

  it('stays signed in when restoring the session is rate limited: it says so, waits, and tries again', async () => {
    const page = await newPage();
    await signedIn(page);
    let refusals = 0;
    await page.route('**/v1/auth/refresh', async (route) => {
      if (refusals > 0) return route.continue();
      refusals += 1;
      const body = JSON.stringify({ type: 'about:blank', title: 'Too Many Requests', status: 429, detail: 'rate limit exceeded' });
      return route.fulfill({ status: 429, headers: { 'content-type': 'application/problem+json', 'retry-after': '1' }, body });
    });
    await page.reload();
    await page.getByRole('heading', { name: 'Your session could not be restored yet' }).waitFor();
    expect(await page.getByRole('alert').locator('.problem-title').textContent()).toBe('Too Many Requests');
    expect(page.url()).not.toContain('/sign-in');
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    expect(refusals).toBe(1);
  });

  it('shows an API error as the problem\'s title and detail', async () => {
    const page = await newPage();
    const { token } = await signedIn(page);
    const body = { type: 'sleep', input: { ms: -5 } };
    const expected = await call<{ title: string; detail: string }>(stack.api, '/v1/jobs', { token, json: body });
    expect(expected.status).toBe(400);

    await navLink(page, 'Submit').click();
    await page.getByLabel('Job type').selectOption('sleep');
    await page.getByRole('button', { name: 'Edit as JSON' }).click();
    await page.getByLabel('Input as JSON').fill(JSON.stringify(body.input));
    await page.getByRole('button', { name: 'Submit job' }).click();
    const alert = page.getByRole('alert');
    await alert.locator('.problem-title', { hasText: expected.body.title }).waitFor();
    expect(await alert.locator('.problem-detail').textContent()).toBe(expected.body.detail);
    await screenshot(page, 'problem');
  });

  it('says when to try again after a 503 in its own words, keeping what the API\'s detail says beyond its pointer at Retry-After', async () => {
    const page = await newPage();
    const account = await signUp(stack.api, PASSWORD);
    // What the API answers while PostgreSQL is away (services/api/problem.ts).
    await page.route('**/v1/auth/login', (route) =>
      route.fulfill({
        status: 503,
        contentType: 'application/problem+json',
        headers: { 'retry-after': '5' },
        body: JSON.stringify({ type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'the database is unavailable (a request found it away moments ago); try again shortly' }),
      }),
    );
    await page.goto('/sign-in');
    await page.getByLabel('Email').fill(account.email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.getByRole('alert');
    await alert.locator('.problem-retry').waitFor();
    expect(await alert.locator('p').allTextContents()).toEqual(['Service Unavailable', 'the database is unavailable (a request found it away moments ago)', 'Try again in 5 seconds.']);
  });

  it('is usable by keyboard alone: sign in, open a page, submit a job, reach its page', async () => {
    const account = await signUp(stack.api, PASSWORD);
    const page = await newPage();
    await page.goto('/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    // The page's script runs in the browser (no DOM types here): what has focus, and whether its outline shows.
    const focused = () =>
      page.evaluate<{ tag: string; label: string; id: string; outline: string }>(`(() => {
        const element = document.activeElement;
        return { tag: element.tagName.toLowerCase(), label: element.getAttribute('aria-label') ?? element.textContent.trim(), id: element.id, outline: getComputedStyle(element).outlineStyle };
      })()`);
    const tabTo = async (predicate: (state: Awaited<ReturnType<typeof focused>>) => boolean, what: string) => {
      for (let presses = 0; presses < 40; presses += 1) {
        await page.keyboard.press('Tab');
        const state = await focused();
        if (predicate(state)) return state;
      }
      throw new Error(`Tab never reached ${what}`);
    };

    // The skip link comes first and is visible when focused.
    const skip = await tabTo((s) => s.label === 'Skip to content', 'the skip link');
    expect(skip.outline).not.toBe('none');
    await tabTo((s) => s.id === 'email', 'the email field');
    await page.keyboard.type(account.email);
    await page.keyboard.press('Tab');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();

    const submitLink = await tabTo((s) => s.tag === 'a' && s.label === 'Submit', 'the Submit link');
    expect(submitLink.outline).not.toBe('none');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Submit a job' }).waitFor();
    // Navigation moved focus to the new page's heading.
    await page.waitForFunction('document.activeElement?.id === "page-title"');

    await tabTo((s) => s.id === 'job-type', 'the job type');
    await page.keyboard.press('Home');
    expect(await page.getByLabel('Job type').inputValue()).toBe('echo');
    await tabTo((s) => s.id === 'input-payload', 'the payload field');
    await page.keyboard.type('{"typed": "by keyboard"}');
    const submit = await tabTo((s) => s.tag === 'button' && s.label === 'Submit job', 'the submit button');
    expect(submit.outline).not.toBe('none');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Job echo' }).waitFor();
    await page.getByLabel('Result').filter({ hasText: 'by keyboard' }).waitFor();
  });

  it('reads at 375 px wide: no screen scrolls sideways', async () => {
    const page = await newPage({ width: 375, height: 812 });
    const signedOutScreens: [string, string][] = [
      ['sign-in', 'Sign in'],
      ['forgot-password', 'Reset your password'],
      ['reset', 'Incomplete reset link'],
    ];
    for (const [screen, title] of signedOutScreens) {
      await page.goto(`/${screen}`);
      await page.getByRole('heading', { name: title }).waitFor();
      expect({ screen, overflow: await horizontalOverflow(page) }).toEqual({ screen, overflow: 0 });
    }
    const { token } = await signedIn(page);
    const job = await call<{ id: string }>(stack.api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: { a: 'long value '.repeat(30) } } } });
    const screens: [string, string, string][] = [
      ['jobs', '/', 'Jobs'],
      ['submit', '/submit', 'Submit a job'],
      ['files', '/files', 'Files'],
      ['job', `/jobs/${job.body.id}`, 'Job echo'],
    ];
    for (const [screen, url, title] of screens) {
      await visit(page, url);
      await page.getByRole('heading', { name: title }).waitFor();
      await page.locator('main').getByText('Loading').waitFor({ state: 'detached' });
      expect({ screen, overflow: await horizontalOverflow(page) }).toEqual({ screen, overflow: 0 });
      await screenshot(page, `narrow-${screen}`);
    }
  });

  it('has no serious or critical accessibility violations on its main screens', async () => {
    const page = await newPage();
    await page.goto('/sign-in');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    const found: Record<string, string[]> = { 'sign-in': await seriousViolations(page) };
    await screenshot(page, 'sign-in');
    await page.goto('/register');
    await page.getByRole('heading', { name: 'Create an account' }).waitFor();
    found.register = await seriousViolations(page);

    const account = await signUp(stack.api, PASSWORD);
    const { token, userId } = account;
    const job = await call<{ id: string }>(stack.api, '/v1/jobs', { token, json: { type: 'echo', input: { payload: [1, 2, 3] } } });
    await signedIn(page, account);
    await page.locator(`tr[data-job-id="${job.body.id}"]`).waitFor();
    found.jobs = await seriousViolations(page);
    await navLink(page, 'Submit').click();
    await page.getByLabel('Job type').waitFor();
    found.submit = await seriousViolations(page);
    await page.getByLabel('Job type').selectOption('csv.summary');
    found['submit csv.summary'] = await seriousViolations(page);
    await uploadThroughConsole(page, 'a.csv', 'a,b\n1,2\n');
    found.files = await seriousViolations(page);
    await visit(page, `/jobs/${job.body.id}`);
    await page.locator('.toolbar .status', { hasText: 'succeeded' }).waitFor();
    found.job = await seriousViolations(page);

    // The role is read at sign-in: sign in again as the admin the account now is.
    await makeAdmin(stack.api, userId, PASSWORD);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signedIn(page, account);
    await navLink(page, 'Operations').click();
    await page.getByRole('heading', { name: /^Queue / }).waitFor();
    found.admin = await seriousViolations(page);
    await screenshot(page, 'admin');
    expect(found).toEqual({ 'sign-in': [], register: [], jobs: [], submit: [], 'submit csv.summary': [], files: [], job: [], admin: [] });
  });

  it('lets an admin pause and resume the queue and replay a dead-lettered job', async () => {
    const page = await newPage();
    const account = await signUp(stack.api, PASSWORD);
    const adminToken = await makeAdmin(stack.api, account.userId, PASSWORD);
    const doomed = { body: { id: await deadLetteredJob(adminToken) } };

    await signedIn(page, account);
    await navLink(page, 'Operations').click();
    await page.getByRole('heading', { name: 'Operations' }).waitFor();
    await page.getByRole('button', { name: 'Pause queue' }).click();
    await page.getByRole('button', { name: 'Resume queue' }).waitFor();
    expect((await call<{ paused: boolean }>(stack.api, '/v1/admin/queues', { token: adminToken })).body.paused).toBe(true);
    await page.getByRole('button', { name: 'Resume queue' }).click();
    await page.getByRole('button', { name: 'Pause queue' }).waitFor();
    expect((await call<{ paused: boolean }>(stack.api, '/v1/admin/queues', { token: adminToken })).body.paused).toBe(false);

    await page.getByRole('button', { name: `Replay file.checksum ${doomed.body.id.slice(-8)}` }).click();
    await page.getByRole('status').filter({ hasText: 'replayed' }).waitFor();
    const replayed = await call<{ attempts: number; status: string }>(stack.api, `/v1/jobs/${doomed.body.id}`, { token: adminToken });
    expect(replayed.body.status).not.toBe('succeeded');
  });

  it('keeps the Operations page true and usable by keyboard in two tabs: another account\'s dead letter named by its whole id, a conflicting replay, a 375 px screen', async () => {
    const owner = await signUp(stack.api, PASSWORD);
    const jobId = await deadLetteredJob(owner.token);
    const admin = await signUp(stack.api, PASSWORD);
    const adminToken = await makeAdmin(stack.api, admin.userId, PASSWORD);
    const context = await browser.newContext({ baseURL: stack.api.baseUrl, viewport: { width: 375, height: 812 } });
    contexts.push(context);
    const first = await context.newPage();
    first.setDefaultTimeout(JOB_WAIT_MS);
    await signedIn(first, admin);
    await navLink(first, 'Operations').click();
    const row = (page: Page) => page.locator('tr', { hasText: jobId.slice(-8) });
    await row(first).waitFor();
    // The job pages show the viewer's own jobs only: a link there would open "Job not found". The whole id is what `platform jobs show` takes.
    expect(await row(first).getByRole('link').count()).toBe(0);
    expect(await row(first).textContent()).toContain(jobId);
    // What is visually hidden in the table (the replay buttons' names) stays in its scroll box.
    expect(await horizontalOverflow(first)).toBe(0);

    const second = await context.newPage();
    second.setDefaultTimeout(JOB_WAIT_MS);
    await second.goto('/admin');
    await row(second).waitFor();
    try {
      // By keyboard: the queue toggle keeps focus while it works, and after.
      await first.getByRole('button', { name: 'Pause queue' }).focus();
      await first.keyboard.press('Enter');
      await first.getByRole('button', { name: 'Resume queue' }).waitFor();
      await untilInPage(first, 'document.activeElement?.textContent === "Resume queue"');

      // Paused, the replayed job stays queued: the second tab's replay comes too late.
      await first.getByRole('button', { name: `Replay file.checksum ${jobId.slice(-8)}` }).click();
      await first.getByRole('status').filter({ hasText: 'replayed' }).waitFor();
      await untilInPage(first, 'document.activeElement?.textContent === "Dead letters"');
      await second.getByRole('button', { name: `Replay file.checksum ${jobId.slice(-8)}` }).click();
      await second.getByRole('alert').filter({ hasText: 'this one is queued' }).waitFor();
      await row(second).waitFor({ state: 'detached' });
      await second.getByText('The queue is paused').waitFor();
      await second.getByRole('button', { name: 'Refresh' }).click();
      await second.getByRole('alert').waitFor({ state: 'detached' });
    } finally {
      await call(stack.api, '/v1/admin/queues/resume', { method: 'POST', token: adminToken });
    }
  });

  it('signs out every tab of the browser when one signs out, not only the tab whose button was pressed', async () => {
    const context = await browser.newContext({ baseURL: stack.api.baseUrl });
    contexts.push(context);
    const [first, second] = [await context.newPage(), await context.newPage()];
    for (const page of [first, second]) page.setDefaultTimeout(JOB_WAIT_MS);
    await signedIn(first);
    // The Files page holds no event stream: nothing but the sign-out itself can tell it.
    await second.goto('/files');
    await second.getByRole('heading', { name: 'Files' }).waitFor();
    await first.getByRole('button', { name: 'Sign out' }).click();
    await first.getByRole('heading', { name: 'Sign in' }).waitFor();
    await second.getByRole('heading', { name: 'Sign in' }).waitFor();
    expect(await second.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
  });

  it.each([
    ['cannot reach the API', { abort: 'connectionrefused' }],
    ['gets a 503', { status: 503, contentType: 'application/problem+json', headers: { 'retry-after': '5' }, body: '{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"the database is unavailable; try again shortly"}' }],
  ] as const)('ends the session on the server even when the sign-out %s: restores nothing meanwhile, in any tab, says so, and keeps trying', async (_how, failure) => {
    const context = await browser.newContext({ baseURL: stack.api.baseUrl });
    contexts.push(context);
    const [first, second] = [await context.newPage(), await context.newPage()];
    for (const page of [first, second]) page.setDefaultTimeout(JOB_WAIT_MS);
    const account = await signedIn(first);
    await second.goto('/files');
    await second.getByRole('heading', { name: 'Files' }).waitFor();
    const session = await browserSession(context);
    await context.route('**/v1/auth/logout', (route) => ('abort' in failure ? route.abort(failure.abort) : route.fulfill(failure)));

    await first.getByRole('button', { name: 'Sign out' }).click();
    for (const page of [first, second]) await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    // A reload, or a tab opened now, must not bring back the session that the user ended.
    await first.reload();
    const third = await context.newPage();
    await third.goto('/jobs');
    for (const page of [first, third]) {
      await page.getByRole('heading', { name: /^(Sign in|Jobs)$/ }).waitFor();
      expect(await page.getByRole('heading', { name: 'Sign in' }).count()).toBe(1);
    }
    expect(await sessionEnded(session)).toBe(false);
    const unconfirmed = (page: Page) => page.getByRole('alert').filter({ hasText: 'Your session has not ended on the server yet' });
    for (const page of [first, second, third]) await unconfirmed(page).waitFor();
    expect(await seriousViolations(first)).toEqual([]);

    // Signing in now would put a new session's cookie in place of the old one, which then could never be ended from here.
    await first.getByLabel('Email').fill(account.email);
    await first.getByLabel('Password').fill(PASSWORD);
    await first.getByRole('button', { name: 'Sign in' }).click();
    await first.getByRole('alert').filter({ hasText: 'The previous sign-out is not confirmed yet' }).waitFor();
    expect(await browserSession(context)).toBe(session);

    // "Try again now" asks at once, and the notice stays while the API still does not confirm.
    const logouts = () => new Promise<void>((resolve) => first.once('request', (request) => (request.url().endsWith('/v1/auth/logout') ? resolve() : undefined)));
    const asked = logouts();
    await first.getByRole('button', { name: 'Try again now' }).click();
    await asked;
    await unconfirmed(first).waitFor();
    expect(await sessionEnded(session)).toBe(false);

    // The API answers again: a load asks before anything else (unless a tab's backoff came first), and every tab that said "not yet" hears the confirmation.
    await context.unroute('**/v1/auth/logout');
    await second.reload();
    await second.getByRole('heading', { name: 'Sign in' }).waitFor();
    for (const page of [first, third]) await page.getByRole('status').filter({ hasText: 'The server confirmed the sign-out' }).waitFor();
    for (const page of [first, second, third]) expect(await unconfirmed(page).count()).toBe(0);
    // The refused sign-in's alert no longer holds either.
    await first.getByRole('alert').filter({ hasText: 'The previous sign-out is not confirmed yet' }).waitFor({ state: 'detached' });
    expect(await sessionEnded(session)).toBe(true);
    expect(await storedTokens(first)).toEqual({ local: 0, session: 0 });

    await first.getByRole('button', { name: 'Sign in' }).click();
    await first.getByRole('heading', { name: 'Jobs' }).waitFor();
    expect(await browserSession(context)).not.toBe(session);
    await first.getByRole('status').filter({ hasText: 'The server confirmed the sign-out' }).waitFor({ state: 'detached' });
  });

  it('retries an unconfirmed sign-out by itself: later in the same page, and first thing when the console next opens', async () => {
    const context = await browser.newContext({ baseURL: stack.api.baseUrl });
    contexts.push(context);
    const page = await context.newPage();
    page.setDefaultTimeout(JOB_WAIT_MS);
    const account = await signedIn(page);
    const failFirstLogout = async () => {
      await context.route('**/v1/auth/logout', (route) => route.abort('connectionrefused'));
      const attempted = page.waitForEvent('requestfailed', (request) => request.url().endsWith('/v1/auth/logout'));
      await page.getByRole('button', { name: 'Sign out' }).click();
      await attempted;
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await context.unroute('**/v1/auth/logout');
    };

    // Left open, the page asks again after its backoff, with nobody pressing anything.
    const first = await browserSession(context);
    await failFirstLogout();
    for (let polls = 0; polls < 300 && !(await sessionEnded(first)); polls += 1) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await sessionEnded(first)).toBe(true);
    await page.getByRole('status').filter({ hasText: 'The server confirmed the sign-out' }).waitFor();

    // Closed before then, the next console opened in this browser asks first and restores nothing.
    await page.getByLabel('Email').fill(account.email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    const second = await browserSession(context);
    await failFirstLogout();
    await page.close();
    const refreshes: string[] = [];
    const later = await context.newPage();
    later.on('request', (request) => {
      if (request.url().endsWith('/v1/auth/refresh')) refreshes.push(request.url());
    });
    await later.goto('/');
    await later.getByRole('heading', { name: /^(Sign in|Jobs)$/ }).waitFor();
    expect(await later.getByRole('heading', { name: 'Sign in' }).count()).toBe(1);
    await later.getByRole('status').filter({ hasText: 'The server confirmed the sign-out' }).waitFor();
    expect(await sessionEnded(second)).toBe(true);
    expect(refreshes).toEqual([]);
    expect(await storedTokens(later)).toEqual({ local: 0, session: 0 });
  });

  it('keeps the account signed in when a reset link of another account is opened and used here: only the sessions the API ended go', async () => {
    const page = await newPage();
    const here = await signedIn(page);
    const session = await browserSession(page.context());
    const other = await signUp(stack.api, PASSWORD);
    await call(stack.api, '/v1/auth/password-reset', { json: { email: other.email } });
    const link = new URL((await droppedResetMail(stack.api, other.email, seenMails)).link);
    // As a mail program opens it: a new load of the console.
    await page.goto(`${link.pathname}${link.hash}`);
    await page.getByRole('heading', { name: 'Set a new password' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).waitFor();
    expect(await page.locator('.account .email').textContent()).toBe(here.email);
    await page.getByLabel('New password', { exact: true }).fill('a brand new passphrase');
    await page.getByLabel('New password again').fill('a brand new passphrase');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('heading', { name: 'Password changed' }).waitFor();
    expect(await page.locator('.account .email').allTextContents()).toEqual([here.email]);
    await page.getByText(`This browser is still signed in as ${here.email}`).waitFor();
    expect(await sessionEnded(session)).toBe(false);
    expect((await call(stack.api, '/v1/auth/me', { token: other.token })).status).toBe(401);
    // A new load restores the session from its cookie: the reset left it valid.
    await page.goto('/');
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
  });

  it('resets a forgotten password: from the sign-in page, through the mailed link, to signing in with the new password', async () => {
    const account = await signUp(stack.api, PASSWORD);
    const newPassword = 'a brand new passphrase';
    const page = await newPage();
    await page.goto('/sign-in');
    await page.getByRole('link', { name: 'Forgot your password?' }).click();
    await page.getByRole('heading', { name: 'Reset your password' }).waitFor();
    const found: Record<string, string[]> = { 'forgot-password': await seriousViolations(page) };
    await page.getByLabel('Email').fill(account.email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    await page.getByRole('status').filter({ hasText: `If an account exists for ${account.email}, a mail with a link to set a new password is on its way.` }).waitFor();
    await screenshot(page, 'forgot-password');

    const mail = await droppedResetMail(stack.api, account.email, seenMails);
    expect(mail.link).toBe(`${stack.api.env.PUBLIC_URL}/reset#token=${mail.token}`);
    // PUBLIC_URL names the deployed console; the test's API listens on a port of its own.
    const link = new URL(mail.link);
    const requests: { url: string; navigation: boolean; headers: string }[] = [];
    page.on('request', (request) => requests.push({ url: request.url(), navigation: request.isNavigationRequest(), headers: JSON.stringify(request.headers()) }));
    await page.goto(`${link.pathname}${link.hash}`);
    await page.getByRole('heading', { name: 'Set a new password' }).waitFor();
    // The page took the token out of the address bar as soon as it read it.
    await page.waitForURL(`${stack.api.baseUrl}/reset`);
    expect(await page.evaluate('location.hash')).toBe('');
    found.reset = await seriousViolations(page);

    // Two different passwords: said on the page, nothing sent.
    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('New password again').fill(`${newPassword}!`);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByText('The two passwords differ').waitFor();
    expect(await page.getByLabel('New password again').getAttribute('aria-invalid')).toBe('true');
    // A password outside the policy: said at the field, which takes focus, in words and not as the API's field name.
    await page.getByLabel('New password', { exact: true }).fill('too short');
    await page.getByLabel('New password again').fill('too short');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByText('New password must be at least 12 characters').waitFor();
    await untilInPage(page, 'document.activeElement?.id === "new-password"');
    const passwordField = page.getByLabel('New password', { exact: true });
    expect(await passwordField.getAttribute('aria-invalid')).toBe('true');
    expect(await passwordField.getAttribute('aria-describedby')).toBe('password-hint new-password-error');
    expect(await page.getByRole('alert').count()).toBe(0);
    await screenshot(page, 'reset-problem');

    await page.getByLabel('New password', { exact: true }).fill(newPassword);
    await page.getByLabel('New password again').fill(newPassword);
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('heading', { name: 'Password changed' }).waitFor();
    found['password-changed'] = await seriousViolations(page);
    // The token went out in the confirmation's body only: in no address the console asked for, and in no header (Referer).
    expect(requests.filter((request) => (!request.navigation && request.url.includes(mail.token)) || request.headers.includes(mail.token))).toEqual([]);

    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.getByLabel('Email').fill(account.email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'invalid email or password' }).waitFor();
    await page.getByLabel('Password').fill(newPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();

    // The same link a second time, signed in or not: the API refuses the used token, and the page says so.
    const again = await newPage();
    await again.goto(`${link.pathname}${link.hash}`);
    await again.getByLabel('New password', { exact: true }).fill('yet another passphrase');
    await again.getByLabel('New password again').fill('yet another passphrase');
    await again.getByRole('button', { name: 'Set new password' }).click();
    // No password can make a spent link work: the page says so and offers a new mail instead of the form.
    await again.getByRole('alert').filter({ hasText: 'This reset link does not work any more' }).waitFor();
    await untilInPage(again, 'document.activeElement?.getAttribute("role") === "alert"');
    await again.getByRole('button', { name: 'Send reset link' }).waitFor();
    expect(await again.getByLabel('New password', { exact: true }).count()).toBe(0);
    expect((await call(stack.api, '/v1/auth/login', { json: { email: account.email, password: newPassword } })).status).toBe(200);
    expect(found).toEqual({ 'forgot-password': [], reset: [], 'password-changed': [] });
  });

  it('opens a reset link in a signed-in console: sets the password, and the console signs out with the sessions the API ended', async () => {
    const page = await newPage();
    const account = await signedIn(page);
    await call(stack.api, '/v1/auth/password-reset', { json: { email: account.email } });
    const link = new URL((await droppedResetMail(stack.api, account.email, seenMails)).link);
    await visit(page, `${link.pathname}${link.hash}`);
    await page.getByRole('heading', { name: 'Set a new password' }).waitFor();
    await page.getByLabel('New password', { exact: true }).fill('a brand new passphrase');
    await page.getByLabel('New password again').fill('a brand new passphrase');
    await page.getByRole('button', { name: 'Set new password' }).click();
    await page.getByRole('heading', { name: 'Password changed' }).waitFor();
    await page.getByRole('button', { name: 'Sign out' }).waitFor({ state: 'detached' });
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });

  it('says a reset link without a token is incomplete and offers the request form, whose rate limit says when to try again', async () => {
    const page = await newPage();
    await page.goto('/reset');
    await page.getByRole('heading', { name: 'Incomplete reset link' }).waitFor();
    expect(await seriousViolations(page)).toEqual([]);
    // The limit counts requests per address, registered or not, so it tells nothing either.
    const email = `nobody-${randomBytes(4).toString('hex')}@example.com`;
    for (let request = 0; request < stack.api.env.PASSWORD_RESET_PER_HOUR; request += 1) {
      expect((await call(stack.api, '/v1/auth/password-reset', { json: { email } })).status).toBe(202);
    }
    await page.getByLabel('Email').fill(email);
    await page.getByRole('button', { name: 'Send reset link' }).click();
    const alert = page.getByRole('alert');
    await alert.locator('.problem-title', { hasText: 'Too Many Requests' }).waitFor();
    // The wait in the console's own words: the API's detail points at a header nobody reading the page sees, and keeps only what it says beyond that.
    expect(await alert.locator('p').allTextContents()).toEqual([
      'Too Many Requests',
      'too many password-reset requests for this address',
      expect.stringMatching(/^Try again in \d+ (minutes?|seconds?)\.$/),
    ]);
    expect(await page.getByRole('status').textContent()).toBe('');
    await screenshot(page, 'reset-incomplete');
  });

  it('restores the session from the refresh cookie on reload, and signs out for good', async () => {
    const page = await newPage();
    await signedIn(page);
    await page.reload();
    await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    expect(await storedTokens(page)).toEqual({ local: 0, session: 0 });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
  });

  it('keeps the session when several tabs restore it at once, as a browser reopening its tabs does', async () => {
    const context = await browser.newContext({ baseURL: stack.api.baseUrl });
    contexts.push(context);
    const tabs = [await context.newPage(), await context.newPage(), await context.newPage()];
    for (const tab of tabs) tab.setDefaultTimeout(JOB_WAIT_MS);
    const [first] = tabs;
    if (!first) throw new Error('no tab');
    await signedIn(first);
    const session = await browserSession(context);
    // Not waiting for their refreshes to be answered: the first reload may cut one short, and the browser then never stores the cookie it rotated.
    for (const tab of tabs.slice(1)) await tab.goto('/files');
    // Each refresh rotates the cookie; two sent with the same one look to the API like a replayed token.
    for (let round = 0; round < 3; round += 1) {
      await Promise.all(tabs.map((tab) => tab.reload()));
      const shown = await Promise.all(
        tabs.map(async (tab) => {
          await tab.getByRole('heading', { name: /^(Jobs|Files|Sign in)$/ }).waitFor();
          return tab.getByRole('heading', { level: 1 }).textContent();
        }),
      );
      expect({ round, shown }).toEqual({ round, shown: ['Jobs', 'Files', 'Files'] });
    }
    expect(await sessionEnded(session)).toBe(false);
  });

  it('keeps its session when a page of another origin posts to refresh and logout (a form, a no-cors fetch)', async () => {
    // The attacker's page: another port of the console's host (same site, other origin) and another host (another site).
    const target = stack.api.baseUrl;
    const attacker: Server = createServer((req, res) => {
      res.setHeader('content-type', 'text/html');
      const form = (action: string) => `<form id="f" method="post" action="${target}${action}"></form><script>document.getElementById('f').submit()</script>`;
      if (req.url === '/logout') res.end(form('/v1/auth/logout'));
      else if (req.url === '/refresh') res.end(form('/v1/auth/refresh'));
      else res.end(`<script>fetch('${target}/v1/auth/refresh', { method: 'POST', mode: 'no-cors', credentials: 'include' }).finally(() => { document.title = 'sent'; })</script>`);
    });
    await new Promise<void>((resolve) => attacker.listen(0, '127.0.0.1', resolve));
    const port = (attacker.address() as AddressInfo).port;
    try {
      const page = await newPage();
      await signedIn(page);
      const cookieOf = async () => (await page.context().cookies()).find((cookie) => cookie.name === SECURE_REFRESH_COOKIE.name)?.value;
      const before = await cookieOf();
      expect(before).toMatch(/^[A-Za-z0-9_-]{43}$/);
      for (const origin of [`http://127.0.0.1:${port}`, `http://localhost:${port}`]) {
        for (const attack of ['/fetch', '/refresh', '/logout']) {
          const evil = await page.context().newPage();
          await evil.goto(`${origin}${attack}`, { waitUntil: 'commit' });
          await evil.waitForLoadState('networkidle');
          await evil.close();
          expect({ origin, attack, cookie: await cookieOf() }).toEqual({ origin, attack, cookie: before });
        }
      }
      await page.reload();
      await page.getByRole('heading', { name: 'Jobs' }).waitFor();
    } finally {
      await new Promise<void>((resolve) => attacker.close(() => resolve()));
    }
  });

  it('keeps an uploaded file\'s non-ASCII name as the browser sent it', async () => {
    const page = await newPage();
    await signedIn(page);
    await uploadThroughConsole(page, 'résumé 履歴書.txt', 'name test\n');
    await page.locator('li[data-file-id] strong', { hasText: 'résumé 履歴書.txt' }).waitFor();
  });

  it('stays on its own origin and keeps working when sign-in\'s next points elsewhere', async () => {
    const page = await newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    const account = await signUp(stack.api, PASSWORD);
    for (const next of ['/\\evil.example/', '//evil.example/', 'https://evil.example/', 'javascript:alert(1)', '/%5Cevil.example']) {
      await page.goto(`/sign-in?next=${encodeURIComponent(next)}`);
      if (next === '/\\evil.example/') {
        await page.getByLabel('Email').fill(account.email);
        await page.getByLabel('Password').fill(PASSWORD);
        await page.getByRole('button', { name: 'Sign in' }).click();
      }
      await page.getByRole('heading', { name: /^(Jobs|Not found)$/ }).waitFor();
      expect({ next, origin: new URL(page.url()).origin }).toEqual({ next, origin: stack.api.baseUrl });
    }
    expect(pageErrors).toEqual([]);
  });

  it('shows bidi control characters of a result escaped, so they cannot reorder what the JSON reads', async () => {
    const page = await newPage();
    const account = await signedIn(page);
    const payload = { name: 'invoice\u202Efdp.exe', note: 'a\u2067b\u200Fc' };
    const job = await call<{ id: string }>(stack.api, '/v1/jobs', { token: account.token, json: { type: 'echo', input: { payload } } });
    await visit(page, `/jobs/${job.body.id}`);
    const result = page.getByLabel('Result');
    await result.waitFor();
    const shown = await result.textContent();
    expect(shown).not.toMatch(/[\u200E\u200F\u202A-\u202E\u2066-\u2069]/);
    expect(shown).toContain('invoice\\u202efdp.exe');
    expect(JSON.parse(shown ?? '')).toEqual({ payload });
  });
});
