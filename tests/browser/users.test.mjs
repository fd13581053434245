// users.test.mjs: the dashboard on a server with users (issue 16), in
// headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core.
//
// Starts `mnistd serve --port 0` on a fresh database, adds alice, bob and
// an admin, teacher, with `mnistd users add`, and queues runs as each
// through the API (alice 2, bob 1, teacher 1). Then, as a person would:
// opens the dashboard, which asks for a token; logs in as alice and sees
// her name in the header and only her runs; changes the token to bob's
// and sees only his; checks that the token lives in sessionStorage only
// (not localStorage) and that a new browser session asks again; logs in
// as the admin, whose list is "My runs" by default, and uses the owner
// filter to see everyone's runs, then alice's alone (with an Owner column,
// which users do not have). Exits non-zero when
// a check fails; the last line is "N passed, N failed".
//
// Environment: MNISTD_BIN (default build/mnistd), MNISTD_DATA_DIR (default
// data), CHROMIUM (default /usr/bin/chromium).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.MNISTD_BIN || path.join(REPO, 'build', 'mnistd');
const DATA = process.env.MNISTD_DATA_DIR || path.join(REPO, 'data');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// runs that do not end during the test (cancelled at its end)
const LONG = { model: 'linear', steps: 1000000, periods: 10, seed: 1 };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnistd-browser-users-'));
const DB = path.join(tmp, 't.db');
let passed = 0, failed = 0;

function log(...a) { console.log(...a); }
function assert(cond, msg) { if (!cond) throw new Error(msg || 'assertion failed'); }

async function check(name, fn) {
  try {
    await fn();
    passed++;
    log(`ok    ${name}`);
  } catch (e) {
    failed++;
    log(`FAIL  ${name}\n      ${(e && e.stack ? e.stack : String(e)).split('\n').join('\n      ')}`);
  }
}

function addUser(name, admin) {
  const args = ['users', 'add', name, '--db', DB].concat(admin ? ['--admin'] : []);
  return execFileSync(BIN, args, { encoding: 'utf8' }).trim().split('\n').pop();
}

function startServer() {
  return new Promise((resolve, reject) => {
    const errLog = path.join(tmp, 'mnistd-stderr.log');
    const err = fs.openSync(errLog, 'w');
    // one worker: the runs stay queued or running while the test looks
    const proc = spawn(BIN, ['serve', '--port', '0', '--db', DB, '--data-dir', DATA,
      '--workers', '1'], { stdio: ['ignore', 'pipe', err] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no "listening on port N" within 30 s (${errLog})`)), 30_000);
    proc.stdout.on('data', (d) => {
      out += d;
      const m = /listening on port (\d+)\n/.exec(out);
      if (m) { clearTimeout(timer); resolve({ proc, port: Number(m[1]), errLog }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`mnistd exited ${code} (${errLog})`)); });
  });
}

function stopServer(s) {
  return new Promise((resolve) => {
    s.proc.removeAllListeners('exit');
    if (s.proc.exitCode !== null) return resolve(s.proc.exitCode);
    s.proc.on('exit', (code) => resolve(code));
    s.proc.kill('SIGTERM');
  });
}

let srv = null, browser = null;
const base = () => `http://127.0.0.1:${srv.port}`;

async function api(token, method, p, body) {
  const r = await fetch(base() + p, {
    method,
    headers: Object.assign({ Authorization: `Bearer ${token}` },
      body ? { 'Content-Type': 'application/json' } : {}),
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await r.json();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${JSON.stringify(data)}`);
  return data;
}

// the run ids in the runs table, sorted
async function shownIds(page) {
  const ids = await page.locator('#runs-table tbody tr[data-id]').evaluateAll(
    (rows) => rows.map((r) => Number(r.dataset.id)));
  return ids.sort((a, b) => a - b);
}

async function waitShown(page, want) {
  const w = JSON.stringify(want);
  for (let i = 0; i < 100; i++) {
    if (JSON.stringify(await shownIds(page)) === w) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`runs shown ${JSON.stringify(await shownIds(page))}, wanted ${w}`);
}

async function logIn(page, token) {
  await page.locator('#token-bar').waitFor({ state: 'visible' });
  await page.fill('#token-input', token);
  await page.click('#token-form button[type=submit]');
  await page.locator('#token-bar').waitFor({ state: 'hidden' });
}

async function main() {
  const tokens = { alice: addUser('alice'), bob: addUser('bob'), teacher: addUser('teacher', true) };
  srv = await startServer();
  log(`mnistd on port ${srv.port}; work dir ${tmp}`);
  const runs = { alice: [], bob: [], teacher: [] };
  for (const [who, n] of [['alice', 2], ['bob', 1], ['teacher', 1]])
    for (let i = 0; i < n; i++) runs[who].push(Number((await api(tokens[who], 'POST', '/runs', LONG)).id));
  const all = [].concat(runs.alice, runs.bob, runs.teacher).sort((a, b) => a - b);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(30_000);
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));

  await check('without a token the dashboard asks for one', async () => {
    await page.goto(`${base()}/`);
    await page.locator('#token-bar').waitFor({ state: 'visible' });
    assert(await page.locator('#who').isHidden(), 'a name is shown before logging in');
  });

  await check('alice sees her name and only her runs', async () => {
    await logIn(page, tokens.alice);
    await page.locator('#who-name', { hasText: 'alice' }).waitFor();
    await waitShown(page, runs.alice);
    assert(await page.locator('#owner-filter').count() === 0, 'a user has an owner filter');
    assert(await page.locator('#runs-table tbody td.owner').first().isHidden(), 'a user sees an owner column');
    assert((await page.locator('.toolbar h1').first().textContent()) === 'My runs', 'title is not "My runs"');
  });

  await check('the token is kept for the browser session only', async () => {
    const kept = await page.evaluate(() => [sessionStorage.getItem('mnistd.token'),
      localStorage.getItem('mnistd.token')]);
    assert(kept[0] === tokens.alice, 'the token is not in sessionStorage');
    assert(kept[1] === null, 'the token is in localStorage');
    await page.reload();   // the same session: still alice
    await page.locator('#who-name', { hasText: 'alice' }).waitFor();
    await waitShown(page, runs.alice);
    const other = await browser.newContext();   // another session: asks again
    const p2 = await other.newPage();
    await p2.goto(`${base()}/`);
    await p2.locator('#token-bar').waitFor({ state: 'visible' });
    await other.close();
  });

  await check('after changing the token bob sees only his runs', async () => {
    await page.click('#who-change');
    await logIn(page, tokens.bob);
    await page.locator('#who-name', { hasText: 'bob' }).waitFor();
    await waitShown(page, runs.bob);
    // alice's run page is not found for bob
    await page.goto(`${base()}/#/runs/${runs.alice[0]}`);
    await page.locator('p.error').first().waitFor();
    assert(/not|no run/i.test(await page.locator('p.error').first().textContent()), 'not a not-found');
    await page.goto(`${base()}/#/runs`);
  });

  await check('an admin sees their own runs by default, everyone\'s and one owner\'s on request', async () => {
    await page.click('#who-change');
    await logIn(page, tokens.teacher);
    await page.locator('#who-name', { hasText: 'teacher (admin)' }).waitFor();
    await waitShown(page, runs.teacher);
    await page.selectOption('#owner-filter', '');
    await waitShown(page, all);
    await page.selectOption('#owner-filter', 'alice');
    await waitShown(page, runs.alice);
    // the admin's table names each run's owner (a user's does not)
    const owners = await page.locator('#runs-table tbody td.owner').allTextContents();
    assert(owners.length === 2 && owners.every((o) => o === 'alice'), `owners ${owners}`);
    assert(await page.locator('#runs-table tbody td.owner').first().isVisible(), 'owner column hidden');
    await page.selectOption('#owner-filter', 'mine');
    await waitShown(page, runs.teacher);
  });

  await check('no script errors', async () => {
    assert(pageErrors.length === 0, pageErrors.join('\n'));
  });

  for (const id of all) await api(tokens.teacher, 'POST', `/runs/${id}/cancel`).catch(() => {});
}

let code = 0;
try {
  await main();
} catch (e) {
  failed++;
  log(`FAIL  setup: ${e && e.stack ? e.stack : e}`);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (srv) {
    const rc = await stopServer(srv);
    if (rc !== 0) { failed++; log(`FAIL  mnistd exited ${rc} on SIGTERM (${srv.errLog})`); }
  }
  if (failed && srv) log(`server log: ${srv.errLog}`);
  log(`${passed} passed, ${failed} failed`);
  code = failed ? 1 : 0;
  if (!failed) fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(code);
