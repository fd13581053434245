// dashboard.test.mjs: the mnistd dashboard in headless Chromium (Debian's
// /usr/bin/chromium) driven by playwright-core.
//
// Starts `mnistd serve --port 0` on a fresh database in a temporary
// directory, then, as a person would: starts a small dnn run from the form
// (after checking that the form shows the server's 400 message), watches it
// train with live curves, opens its pictures, evaluates it on the test set,
// sorts the runs table and compares two runs, draws real MNIST test digits
// on the pad with mouse strokes (traced from the IDX file) and checks the
// predicted class, browses the gallery with the run's mistakes, deletes an
// uploaded dataset from the gallery (and sees the server's refusal while a
// run trains on one), starts a hyperparameter search from the sweep form
// and watches it finish (trials table, scatter plots, curves), and looks
// at everything again on a phone-sized
// screen. Screenshots go to a temporary directory whose path is printed.
// Exits non-zero when a check fails; the last line is "N passed, N
// failed".
//
// Environment: MNISTD_BIN (default build/mnistd), MNISTD_DATA_DIR (default
// data), CHROMIUM (default /usr/bin/chromium).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = process.env.MNISTD_BIN || path.join(REPO, 'build', 'mnistd');
const DATA = process.env.MNISTD_DATA_DIR || path.join(REPO, 'data');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const RUN_TIMEOUT = 180_000;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mnistd-browser-'));
const shots = path.join(tmp, 'screenshots');
fs.mkdirSync(shots);
let passed = 0, failed = 0;
const results = [];

function log(...a) { console.log(...a); }

async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    passed++;
    results.push(`ok    ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    log(`ok    ${name}`);
  } catch (e) {
    failed++;
    results.push(`FAIL  ${name}: ${e && e.message ? e.message : e}`);
    log(`FAIL  ${name}\n      ${(e && e.stack ? e.stack : String(e)).split('\n').join('\n      ')}`);
  }
}

function assert(cond, msg) { if (!cond) throw new Error(msg || 'assertion failed'); }

// ------------------------------------------------------------ MNIST digits

function readIdx(name) {
  for (const p of [path.join(DATA, 'mnist', name), path.join(DATA, 'mnist', name + '.gz')]) {
    if (!fs.existsSync(p)) continue;
    const b = fs.readFileSync(p);
    return b[0] === 0x1f && b[1] === 0x8b ? gunzipSync(b) : b;
  }
  throw new Error(`${name} not found in ${DATA}/mnist (run make data)`);
}

const testImages = readIdx('t10k-images-idx3-ubyte');
const testLabels = readIdx('t10k-labels-idx1-ubyte');
function testDigit(i) {
  return { pixels: testImages.subarray(16 + 784 * i, 16 + 784 * (i + 1)), label: testLabels[8 + i] };
}

// Zhang-Suen thinning of a 28x28 binary image (Uint8Array of 0/1).
function thin(img) {
  const a = Uint8Array.from(img);
  const at = (x, y) => (x < 0 || y < 0 || x >= 28 || y >= 28 ? 0 : a[y * 28 + x]);
  let changed = true;
  while (changed) {
    changed = false;
    for (const pass of [0, 1]) {
      const del = [];
      for (let y = 0; y < 28; y++) for (let x = 0; x < 28; x++) {
        if (!a[y * 28 + x]) continue;
        const n = [at(x, y - 1), at(x + 1, y - 1), at(x + 1, y), at(x + 1, y + 1),
                   at(x, y + 1), at(x - 1, y + 1), at(x - 1, y), at(x - 1, y - 1)];
        const b = n.reduce((s, v) => s + v, 0);
        let t = 0;
        for (let k = 0; k < 8; k++) if (!n[k] && n[(k + 1) % 8]) t++;
        const [p2, , p4, , p6, , p8] = n;
        const ok = pass === 0 ? !(p2 && p4 && p6) && !(p4 && p6 && p8)
                              : !(p2 && p4 && p8) && !(p2 && p6 && p8);
        if (b >= 2 && b <= 6 && t === 1 && ok) del.push(y * 28 + x);
      }
      for (const i of del) a[i] = 0;
      if (del.length) changed = true;
    }
  }
  return a;
}

// The ink of a digit as pen strokes: its skeleton's 8-connected pixels
// walked as polylines, in MNIST pixel coordinates (pixel centres).
function strokesOf(pixels, threshold = 100) {
  const skel = thin(Uint8Array.from(pixels, (v) => (v > threshold ? 1 : 0)));
  const on = (x, y) => x >= 0 && y >= 0 && x < 28 && y < 28 && skel[y * 28 + x];
  const nbrs = (p) => {
    const x = p % 28, y = (p - x) / 28, out = [];
    for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++)
      if ((dx || dy) && on(x + dx, y + dy)) out.push((y + dy) * 28 + x + dx);
    return out;
  };
  const used = new Set();
  const key = (p, q) => (p < q ? `${p}-${q}` : `${q}-${p}`);
  const free = (p) => nbrs(p).filter((q) => !used.has(key(p, q)));
  const pts = [];
  for (let i = 0; i < 784; i++) if (skel[i]) pts.push(i);
  // start at ends (one neighbour) first, so that strokes follow the lines
  pts.sort((p, q) => nbrs(p).length - nbrs(q).length);
  const strokes = [];
  for (const s of pts) {
    while (free(s).length) {
      const line = [s];
      let cur = s;
      for (;;) {
        const f = free(cur);
        if (!f.length) break;
        // prefer orthogonal steps, then diagonal
        f.sort((p, q) => (Math.abs(p - cur) === 1 || Math.abs(p - cur) === 28 ? 0 : 1)
                       - (Math.abs(q - cur) === 1 || Math.abs(q - cur) === 28 ? 0 : 1));
        used.add(key(cur, f[0]));
        cur = f[0];
        line.push(cur);
      }
      strokes.push(line.map((p) => [(p % 28) + 0.5, Math.floor(p / 28) + 0.5]));
    }
  }
  // a lone pixel (no neighbours) is a dot
  for (const s of pts) if (!nbrs(s).length) strokes.push([[(s % 28) + 0.5, Math.floor(s / 28) + 0.5]]);
  return strokes;
}

// Draws strokes (MNIST coordinates) on the pad with the mouse.
async function drawOnPad(page, strokes) {
  const box = await page.locator('#pad').boundingBox();
  const s = box.width / 28;
  const at = ([x, y]) => [box.x + x * s, box.y + y * s];
  for (const line of strokes) {
    const [x0, y0] = at(line[0]);
    await page.mouse.move(x0, y0);
    await page.mouse.down();
    for (const p of line.slice(1)) {
      const [x, y] = at(p);
      await page.mouse.move(x, y, { steps: 3 });
    }
    if (line.length === 1) await page.mouse.move(x0 + 1, y0 + 1);
    await page.mouse.up();
  }
}

// ------------------------------------------------------------ the server

function startServer() {
  return new Promise((resolve, reject) => {
    const errLog = path.join(tmp, 'mnistd-stderr.log');
    const err = fs.openSync(errLog, 'w');
    const proc = spawn(BIN, ['serve', '--port', '0', '--db', path.join(tmp, 't.db'), '--data-dir', DATA,
      '--workers', '2'], { stdio: ['ignore', 'pipe', err] });
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

function stopServer(srv) {
  return new Promise((resolve) => {
    if (srv.proc.exitCode !== null) return resolve(srv.proc.exitCode);
    const t = setTimeout(() => { srv.proc.kill('SIGKILL'); }, 15_000);
    srv.proc.removeAllListeners('exit');
    srv.proc.on('exit', (code, sig) => { clearTimeout(t); resolve(code === null ? sig : code); });
    srv.proc.kill('SIGTERM');
  });
}

// ------------------------------------------------------------ the test

let srv, ctx, page;
const pageErrors = [];

async function api(method, p, body) {
  const r = await fetch(`http://127.0.0.1:${srv.port}${p}`, {
    method, headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${p}: ${r.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function shot(name, opts = {}) {
  const p = path.join(shots, `${name}.png`);
  await page.screenshot({ path: p, fullPage: true, ...opts });
  log(`      screenshot ${p}`);
  return p;
}

async function imagesLoaded(selector) {
  await page.waitForFunction((sel) => {
    const imgs = [...document.querySelectorAll(sel)];
    return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
  }, selector, { timeout: 30_000 });
}

let runId = null, run2Id = null;
const BASE = () => `http://127.0.0.1:${srv.port}`;

async function main() {
  srv = await startServer();
  log(`mnistd on port ${srv.port}; work dir ${tmp}`);
  ctx = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = ctx.pages()[0] || await ctx.newPage();
  page.setDefaultTimeout(30_000);
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`); });
  // the dashboard must load nothing from anywhere but mnistd
  const foreign = [];
  await ctx.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.hostname !== '127.0.0.1') { foreign.push(u.href); return route.abort(); }
    return route.continue();
  });

  await check('the dashboard loads with its embedded assets', async () => {
    await page.goto(`${BASE()}/`);
    await page.locator('#runs-table').waitFor();
    assert(await page.evaluate(() => typeof window.uPlot === 'function'), 'uPlot is not loaded');
    for (const f of ['app.js', 'app.css', 'pad.js', 'uPlot.iife.min.js', 'uPlot.min.css']) {
      const r = await fetch(`${BASE()}/static/${f}`);
      assert(r.status === 200, `/static/${f}: ${r.status}`);
    }
    assert((await fetch(`${BASE()}/static/nope.js`)).status === 404, '/static/nope.js is not 404');
    await shot('01-runs-empty');
  });

  await check('the form switches recipes with the model and shows the server\'s 400 message', async () => {
    await page.goto(`${BASE()}/#/new`);
    await page.locator('#run-form').waitFor();
    await page.selectOption('#f-model', 'linear');
    assert(await page.inputValue('#f-learning_rate') === '0.03', 'linear lr default is not 0.03');
    assert(await page.isDisabled('#f-hidden_units'), 'hidden units enabled for linear');
    await page.selectOption('#f-model', 'dnn');
    assert(await page.inputValue('#f-learning_rate') === '0.05', 'dnn lr default is not 0.05');
    assert(/100,\s*100/.test(await page.inputValue('#f-hidden_units')), 'dnn hidden default is not 100, 100');
    await page.fill('#f-learning_rate', '0');
    await page.click('#start-run');
    await page.waitForFunction(() => document.querySelector('#form-error').textContent.length > 0);
    const msg = await page.textContent('#form-error');
    assert(/learning_rate/.test(msg), `error does not name the field: ${msg}`);
    assert(await page.locator('[data-field="learning_rate"].invalid').count() === 1, 'field not marked');
    await shot('02-form-error');
  });

  await check('a dnn run started from the form trains with live curves for every period', async () => {
    await page.fill('#f-learning_rate', '0.05');
    await page.fill('#f-hidden_units', '64');
    await page.fill('#f-steps', '600');
    await page.fill('#f-seed', '1');
    await page.click('#start-run');
    await page.waitForURL(/#\/runs\/\d+$/);
    runId = page.url().match(/#\/runs\/(\d+)$/)[1];
    const sawLive = page.waitForFunction(() => {
      const t = document.querySelector('#progress-text');
      const pts = Number(document.querySelector('#loss-chart').dataset.points);
      return t && pts > 0 && pts < 10;
    }, null, { timeout: RUN_TIMEOUT }).then(() => true, () => false);
    await page.locator('#run-title .st-succeeded').waitFor({ timeout: RUN_TIMEOUT });
    const run = await api('GET', `/runs/${runId}`);
    assert(run.status === 'succeeded', `run ended ${run.status}`);
    assert(run.params.hidden_units.join() === '64' && run.params.steps === 600 && run.params.seed === 1,
      `params ${JSON.stringify(run.params)}`);
    await page.waitForFunction(() => document.querySelector('#loss-chart').dataset.points === '10');
    const chart = await page.evaluate(() => {
      const el = document.querySelector('#loss-chart');
      const cv = el.querySelector('canvas');
      return { points: Number(el.dataset.points), w: cv ? cv.width : 0, rows: document.querySelectorAll('table.periods tbody tr').length };
    });
    assert(chart.points === run.periods.length && chart.points === 10, `chart points ${chart.points}`);
    assert(chart.rows === 10 && chart.w > 0, JSON.stringify(chart));
    log(`      curves drawn while training: ${await sawLive}`);
  });

  await check('the run\'s confusion and weights pictures load', async () => {
    await imagesLoaded('#confusion-fig img');
    await imagesLoaded('#weights-fig img');
    await imagesLoaded('#loss-fig img');
    const sizes = await page.evaluate(() => ['#confusion-fig', '#weights-fig'].map((s) => document.querySelector(s + ' img').naturalWidth));
    assert(sizes.every((w) => w > 0), `sizes ${sizes}`);
    await shot('03-run');
  });

  await check('the weights slider walks the periods and the tiles change', async () => {
    const list = await api('GET', `/runs/${runId}/snapshots`);
    assert(list.snapshots.length === 10, `snapshots ${JSON.stringify(list)}`);
    await page.locator('#snapshots').waitFor({ state: 'visible' });
    const max = await page.evaluate(() => document.querySelector('#snap-slider').max);
    assert(max === '9', `slider max ${max}, not 9`);
    // the pixels of the picture shown, once the one of `period` has loaded
    async function pixelsAt(period) {
      await page.waitForFunction((p) => {
        const i = document.querySelector('#snap-fig img');
        return i.dataset.period === String(p) && i.complete && i.naturalWidth > 0 &&
          i.currentSrc.endsWith('period=' + p);
      }, period);
      return page.evaluate(() => {
        const i = document.querySelector('#snap-fig img');
        const cv = document.createElement('canvas');
        cv.width = i.naturalWidth; cv.height = i.naturalHeight;
        const g = cv.getContext('2d');
        g.drawImage(i, 0, 0);
        const d = g.getImageData(0, 0, cv.width, cv.height).data;
        let h = 0;
        for (let k = 0; k < d.length; k++) h = (h * 31 + d[k]) >>> 0;
        return { w: cv.width, h: cv.height, hash: h };
      });
    }
    // a finished run's slider starts at its last period
    assert(await page.textContent('#snap-label') === 'period 10 of 10 \u00b7 step 600',
      `label ${await page.textContent('#snap-label')}`);
    const last = await pixelsAt(10);
    await page.focus('#snap-slider');
    await page.keyboard.press('Home');
    const first = await pixelsAt(1);
    assert(/^period 1 of 10/.test(await page.textContent('#snap-label')), 'label after Home');
    await page.locator('#snapshots').screenshot({ path: path.join(shots, '05-weights-period-1.png') });
    await page.keyboard.press('ArrowRight');
    const second = await pixelsAt(2);
    assert(first.w === last.w && first.h === last.h && first.w > 0, `sizes ${JSON.stringify([first, last])}`);
    assert(first.hash !== last.hash && first.hash !== second.hash, 'the picture did not change with the period');
    await page.keyboard.press('End');
    await pixelsAt(10);
    const p = path.join(shots, '05-weights-period-10.png');
    await page.locator('#snapshots').screenshot({ path: p });
    log(`      screenshot ${p}`);
  });

  await check('evaluate on the test set', async () => {
    await page.click('#evaluate');
    await page.locator('#test-accuracy').waitFor({ timeout: 60_000 });
    const t = await page.textContent('#test-accuracy');
    assert(parseFloat(t) > 85, `test accuracy ${t}`);
    const run = await api('GET', `/runs/${runId}`);
    assert(run.test_accuracy > 0.85, `recorded test accuracy ${run.test_accuracy}`);
    await shot('04-run-evaluated');
  });

  await check('a run registers as a model version; the models view shows it and sets an alias', async () => {
    await page.click('#register-version');
    await page.fill('#register-model', 'digits');
    await page.click('#register-submit');
    await page.waitForURL(/#\/models\/digits$/);
    await page.locator('#versions-table tr[data-version="1"]').waitFor();
    const runCell = await page.textContent('#versions-table tr[data-version="1"] td.run');
    assert(runCell.trim() === runId, `version 1 is run ${runCell}`);
    await page.fill('#alias-name', 'production');
    await page.selectOption('#alias-version', '1');
    await page.click('#set-alias');
    await page.waitForFunction(() => /production/.test(
      document.querySelector('#versions-table tr[data-version="1"] td.aliases').textContent));
    const m = await api('GET', '/models/digits');
    assert(m.aliases.production === 1 && m.versions[0].run === runId, JSON.stringify(m));
    assert(m.versions[0].test_accuracy > 0.85, `test accuracy ${m.versions[0].test_accuracy}`);
    await page.goto(`${BASE()}/#/models`);
    await page.locator('#models-table tr[data-name="digits"]').waitFor();
    await shot('04b-models');
    await page.goto(`${BASE()}/#/runs/${runId}`);
    await page.locator('#run-title .st-succeeded').waitFor();
  });

  await check('the runs table sorts by a header and compares two runs', async () => {
    const r2 = await api('POST', '/runs', { model: 'linear', steps: 300, periods: 5, seed: 2 });
    run2Id = r2.id;
    await page.goto(`${BASE()}/#/runs`);
    await page.waitForFunction((id) => document.querySelector(`tr[data-id="${id}"][data-status="succeeded"]`),
      run2Id, { timeout: RUN_TIMEOUT });
    const order = () => page.$$eval('#runs-table tbody tr', (rows) => rows.map((r) => r.dataset.id));
    await page.click('button.sort[data-key="val"]');
    const asc = await order();
    await page.click('button.sort[data-key="val"]');
    const desc = await order();
    const vals = {};
    for (const id of [runId, run2Id]) vals[id] = (await api('GET', `/runs/${id}`)).validation_accuracy;
    const best = vals[runId] > vals[run2Id] ? runId : run2Id;
    assert(asc[asc.length - 1] === best && desc[0] === best, `sort: asc ${asc} desc ${desc} (best ${best})`);
    assert(await page.getAttribute('th:has(button[data-key="val"])', 'aria-sort') === 'descending', 'aria-sort');
    await page.check(`tr[data-id="${runId}"] input[type=checkbox]`);
    await page.check(`tr[data-id="${run2Id}"] input[type=checkbox]`);
    await shot('05-runs');
    await page.click('text=Compare selected');
    await page.waitForURL(/#\/compare\//);
    // the compare view may not be drawn yet: no #compare-loss at first
    await page.waitForFunction(() => {
      const el = document.querySelector('#compare-loss');
      return el !== null && Number(el.dataset.points) > 0;
    });
    const pts = await page.$eval('#compare-loss', (el) => Number(el.dataset.points));
    assert(pts >= 10, `compare points ${pts}`);
    assert(await page.locator('ul.legend li').count() === 2, 'legend');
    await shot('06-compare');
  });

  // clear test digits: 0 is a 7, 2 a 1, 3 a 0
  for (const idx of [0, 2, 3]) {
    const d = testDigit(idx);
    await check(`the drawing pad predicts a traced MNIST test digit (#${idx}, a ${d.label})`, async () => {
      await page.goto(`${BASE()}/#/draw/${runId}`);
      await page.locator('#draw-run').waitFor();
      await page.click('#clear');
      const strokes = strokesOf(d.pixels);
      await drawOnPad(page, strokes);
      await page.waitForFunction((n) => document.querySelector('#pad').dataset.strokes === String(n), strokes.length);
      // the answer to the last stroke
      await page.waitForFunction(() => {
        const p = document.querySelector('#predicted');
        return p.dataset.class !== undefined && !p.classList.contains('busy');
      });
      await page.waitForTimeout(300);
      const got = await page.$eval('#predicted', (p) => p.dataset.class);
      const probs = await page.$$eval('.prob .val', (v) => v.map((x) => x.textContent));
      log(`      ${strokes.length} strokes; predicted ${got}; probabilities ${probs.join(' ')}`);
      await shot(`07-draw-${d.label}`);
      assert(got === String(d.label), `predicted ${got}, the digit is ${d.label}`);
    });
  }

  await check('the gallery shows examples with labels and the run\'s mistakes', async () => {
    await page.goto(`${BASE()}/#/gallery/${runId}`);
    await page.waitForFunction(() => document.querySelector('#gallery').dataset.state === 'done', null, { timeout: 60_000 });
    await imagesLoaded('#gallery img');
    const cells = await page.$$eval('#gallery figure.ex', (fs) => fs.map((f) => ({
      i: Number(f.dataset.index), label: f.dataset.label, pred: f.dataset.predicted, wrong: f.classList.contains('wrong'),
    })));
    assert(cells.length === 48, `cells ${cells.length}`);
    for (const c of cells) {
      assert(c.label === String(testDigit(c.i).label), `label of #${c.i}: ${c.label}`);
      assert(c.wrong === (c.pred !== c.label), `#${c.i} marked wrongly`);
    }
    const wrong = cells.filter((c) => c.wrong).length;
    log(`      ${wrong} mistakes in 48 test examples`);
    await shot('08-gallery');
    await page.check('#g-mistakes');
    const shown = await page.$$eval('#gallery figure.ex', (fs) => fs.filter((f) => f.offsetParent !== null).length);
    assert(shown === wrong, `mistakes only shows ${shown}, expected ${wrong}`);
    await shot('09-gallery-mistakes');
  });

  await check('the gallery deletes an uploaded dataset, and shows why it cannot while a run uses it', async () => {
    const csv = Array.from({ length: 30 }, (_, i) => {
      const d = testDigit(i);
      return `${d.label},${Array.from(d.pixels).join(',')}\n`;
    }).join('');
    for (const name of ['ui-del', 'ui-busy']) {
      const r = await fetch(`${BASE()}/datasets?name=${name}`, {
        method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: csv,
      });
      assert(r.status === 201, `upload ${name}: ${r.status} ${await r.text()}`);
    }
    const busy = await api('POST', '/runs', { model: 'linear', dataset: 'ui-busy', steps: 1000000, periods: 10, batch_size: 10 });
    page.on('dialog', (d) => d.accept());
    await page.goto(`${BASE()}/#/gallery`);
    await page.waitForSelector('#g-dataset option[value="ui-busy"]', { state: 'attached' });
    assert(await page.isDisabled('#g-delete'), 'delete is offered for a built-in dataset');

    await page.selectOption('#g-dataset', 'ui-busy');
    assert(!(await page.isDisabled('#g-delete')), 'delete is not offered for an uploaded dataset');
    await page.click('#g-delete');
    const err = await page.waitForSelector('.msg .error');
    const text = await err.textContent();
    assert(text.includes(`run ${busy.id}`), `the refusal does not name the run: ${text}`);
    await api('POST', `/runs/${busy.id}/cancel`);

    await page.selectOption('#g-dataset', 'ui-del');
    await page.selectOption('#g-count', '24');
    await page.click('#g-load');
    await page.waitForFunction(() => document.querySelector('#gallery').dataset.state === 'done', null, { timeout: 60_000 });
    await page.click('#g-delete');
    await page.waitForSelector('#g-deleted');
    await shot('09b-gallery-dataset-deleted');
    const names = await page.$$eval('#g-dataset option', (os) => os.map((o) => o.value));
    assert(!names.includes('ui-del'), `ui-del still offered: ${names}`);
    const r = await fetch(`${BASE()}/datasets/ui-del`);
    assert(r.status === 404, `GET /datasets/ui-del after the delete: ${r.status}`);
    await page.waitForFunction(() => document.querySelector('#gallery').dataset.state === 'done', null, { timeout: 60_000 });
    page.removeAllListeners('dialog');
  });

  await check('a sweep started from the form finishes with its trials, scatter plots and curves', async () => {
    await page.goto(`${BASE()}/#/sweeps`);
    await page.locator('#sweep-form').waitFor();
    // the example is the exercise's search
    const example = JSON.parse(await page.inputValue('#sw-space'));
    assert(example.learning_rate.scale === 'log' && example.hidden_units.values.length === 3,
      `example space ${JSON.stringify(example)}`);
    // the server's 400 message shows next to the form
    await page.fill('#sw-space', '{"learning_rate": {"min": 0.5, "max": 0.1}}');
    await page.click('#start-sweep');
    await page.waitForFunction(() => document.querySelector('#sweep-error').textContent.length > 0);
    const err = await page.textContent('#sweep-error');
    assert(/space\.learning_rate\.min/.test(err), `error does not name the field: ${err}`);
    // a small search, watched to its end
    await page.fill('#sw-base', JSON.stringify({ model: 'dnn', hidden_units: [16], steps: 60, periods: 3,
      examples: 600, validation_examples: 200 }));
    await page.fill('#sw-space', JSON.stringify({ learning_rate: { min: 0.001, max: 0.5, scale: 'log' },
      batch_size: { values: [10, 20] } }));
    await page.fill('#sw-trials', '6');
    await page.selectOption('#sw-rule', 'median');
    await page.fill('#sw-grace', '1');
    await page.click('#start-sweep');
    await page.waitForURL(/#\/sweeps\/\d+$/);
    const sweepId = page.url().match(/#\/sweeps\/(\d+)$/)[1];
    await page.waitForFunction(() => document.querySelector('#view').dataset.sweepStatus === 'succeeded',
      null, { timeout: RUN_TIMEOUT });
    const sweep = await api('GET', `/sweeps/${sweepId}`);
    assert(sweep.status === 'succeeded' && sweep.trials.length === 6, `sweep ${JSON.stringify(sweep).slice(0, 300)}`);
    await page.waitForFunction(() => document.querySelectorAll('#trials-table tbody tr').length === 6);
    await page.waitForFunction(() => Number(document.querySelector('#sweep-curves').dataset.series) === 6);
    const seen = await page.evaluate(() => ({
      best: document.querySelectorAll('#trials-table tr.best').length,
      scatters: [...document.querySelectorAll('#sweep-scatter .scatter')].map((e) => [e.dataset.field, Number(e.dataset.points)]),
      canvas: document.querySelectorAll('#sweep-scatter canvas, #sweep-curves canvas').length,
    }));
    assert(seen.best === 1, `best rows ${seen.best}`);
    assert(JSON.stringify(seen.scatters) === JSON.stringify([['batch_size', 6], ['learning_rate', 6]]),
      `scatters ${JSON.stringify(seen.scatters)}`);
    assert(seen.canvas === 3, `canvases ${seen.canvas}`);
    // sorted by objective, best first; a click reverses it
    const objectives = async () => page.evaluate(() => [...document.querySelectorAll('#trials-table tbody tr')]
      .map((tr) => tr.querySelector('td.objective').textContent));
    const first = await objectives();
    assert(first[0] === [...first].sort((a, b) => parseFloat(b) - parseFloat(a))[0], `not best first: ${first}`);
    assert(await page.locator('#trials-table tbody tr').first().evaluate((tr) => tr.classList.contains('best')),
      'the first row is not the best trial');
    await page.click('#trials-table button[data-sort="objective"]');
    const second = await objectives();
    const nums = (xs) => xs.map((x) => parseFloat(x));
    assert(nums(first).every((x, i, a) => i === 0 || a[i - 1] >= x), `not descending: ${first}`);
    assert(nums(second).every((x, i, a) => i === 0 || a[i - 1] <= x), `not ascending after the click: ${second}`);
    await shot('09-sweep');
    // the list shows it
    await page.goto(`${BASE()}/#/sweeps`);
    await page.locator(`#sweeps-table tr[data-sweep="${sweepId}"]`).waitFor();
  });

  await check('the runs table shows each run\'s node; the nodes view lists the node alive', async () => {
    const nodes = await api('GET', '/nodes');
    await page.goto(`${BASE()}/#/runs`);
    await page.locator(`tr[data-id="${runId}"] td.node`).waitFor();
    const shown = await page.textContent(`tr[data-id="${runId}"] td.node`);
    assert(shown.trim() === nodes.self, `run's node ${shown}, the server is ${nodes.self}`);
    await page.goto(`${BASE()}/#/nodes`);
    await page.locator(`#nodes-table tr[data-alive="true"]`).waitFor();
    const names = await page.$$eval('#nodes-table tbody tr', (rows) => rows.map((r) => r.dataset.name));
    assert(names.length === 1 && names[0] === nodes.self, `nodes ${names}`);
    await shot('15-nodes');
  });

  await check('views fit a phone-sized screen', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    for (const [hash, name] of [['#/runs', '10-phone-runs'], [`#/runs/${runId}`, '11-phone-run'],
      ['#/new', '12-phone-form'], [`#/draw/${runId}`, '13-phone-draw'], ['#/sweeps', '14-phone-sweeps'],
      ['#/nodes', '16-phone-nodes']]) {
      await page.goto(`${BASE()}/${hash}`);
      await page.waitForLoadState('networkidle').catch(() => {});
      await page.waitForTimeout(400);
      const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(over <= 1, `${hash} is ${over}px wider than the screen`);
      await shot(name);
    }
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await check('no script errors and nothing fetched from elsewhere', async () => {
    const errs = pageErrors.filter((e) => !/Failed to load resource/.test(e));
    assert(errs.length === 0, errs.join('\n'));
    assert(foreign.length === 0, `foreign requests: ${foreign.join(', ')}`);
  });
}

let code = 0;
try {
  await main();
} catch (e) {
  failed++;
  log(`FAIL  setup: ${e && e.stack ? e.stack : e}`);
} finally {
  if (ctx) await ctx.close().catch(() => {});
  if (srv) {
    const rc = await stopServer(srv);
    if (rc !== 0) { failed++; log(`FAIL  mnistd exited ${rc} on SIGTERM (${srv.errLog})`); }
  }
  fs.rmSync(path.join(tmp, 'profile'), { recursive: true, force: true });
  log(`screenshots in ${shots}`);
  if (failed) log(`server log: ${srv ? srv.errLog : '(none)'}`);
  log(`${passed} passed, ${failed} failed`);
  code = failed ? 1 : 0;
}
process.exit(code);
