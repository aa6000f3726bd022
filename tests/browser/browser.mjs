// The shared part of the browser tests: each tests/browser/<name>.mjs is
//
//   import {run} from './browser.mjs';
//   await run(async (t) => {
//     await t.open('/longpoll');
//     await t.expect_count('.msg.new', 2);
//     await t.screenshot('longpoll');
//   });
//
// and is started by tests/integration (harness.hpp: expect_browser_script_passes) as
// `node tests/browser/<name>.mjs BASE_URL SCREENSHOT_DIR`. It drives Debian's
// chromium (/usr/bin/chromium, headless) through playwright-core.
//
// A page fails the script (exit status 1, with the reason) when any helper's
// check fails, and also when, at any time before the end, the page throws an
// uncaught JavaScript error, logs an error to the console, or a request fails
// or is answered 4xx/5xx (unless the script allows that reply: t.allow): a
// broken page must not pass because the one check the script makes happened
// to hold. Every wait is bounded (STEP_MS each,
// TOTAL_MS for the whole script), so a hung page fails instead of hanging.
// A failing script leaves NAME-failure.png next to the screenshots.
import {mkdirSync} from 'node:fs';
import {basename, resolve} from 'node:path';
import {chromium} from 'playwright-core';

const STEP_MS = Number(process.env.BRUBECK_BROWSER_STEP_MS || 15000);
const TOTAL_MS = Number(process.env.BRUBECK_BROWSER_TOTAL_MS || 60000);

class Check {
  constructor(page, base_url, screenshot_dir, name) {
    this.page = page;  // playwright's Page, for clicks, forms and the rest
    this.base_url = base_url;
    this.screenshot_dir = screenshot_dir;
    this.name = name;
    this.problems = [];  // what the page did wrong, as it happened
    this.allowed = [];   // [status, path]: 4xx/5xx replies the script expects
  }

  // Declares a 4xx/5xx reply the page is meant to get (a wrong password's
  // 401, say): status for a URL whose path is path is then no failure.
  allow(status, path) {
    this.allowed.push([status, path]);
  }

  is_allowed(status, url) {
    const path = new URL(url).pathname;
    return this.allowed.some(([s, p]) => s === status && p === path);
  }

  // Opens base_url + path; the document must be answered 2xx, or status when
  // given (which is then allowed).
  async open(path, status) {
    console.log(`browser: open ${path}`);
    if (status !== undefined) this.allow(status, new URL(this.base_url + path).pathname);
    const reply = await this.page.goto(this.base_url + path, {waitUntil: 'load'});
    const got = reply ? reply.status() : 'none';
    if (status === undefined ? !reply || !reply.ok() : got !== status) {
      throw new Error(
          `GET ${path}: status ${got}${status === undefined ? '' : `, expected ${status}`}`);
    }
  }

  // Waits until an element matching selector contains text (as written:
  // playwright's hasText with a string would ignore case).
  async expect_text(selector, text) {
    console.log(`browser: expect ${selector} to contain ${JSON.stringify(text)}`);
    const exact = new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    try {
      await this.page.locator(selector, {hasText: exact}).first().waitFor();
    } catch (e) {
      const found = await this.page.locator(selector).allTextContents().catch(() => []);
      throw new Error(
          `${selector}: expected ${JSON.stringify(text)}, found ${JSON.stringify(found)}`);
    }
  }

  // Waits until at least n elements match selector; returns their texts.
  async expect_count(selector, n) {
    console.log(`browser: expect at least ${n} of ${selector}`);
    try {
      await this.page.waitForFunction(
          ([s, k]) => document.querySelectorAll(s).length >= k, [selector, n]);
    } catch (e) {
      const have = await this.page.locator(selector).count();
      throw new Error(`${selector}: expected at least ${n}, found ${have}`);
    }
    return this.page.locator(selector).allTextContents();
  }

  // Fails unless ok, with message.
  expect(ok, message) {
    if (!ok) throw new Error(message);
  }

  // SCREENSHOT_DIR/<name>.png, the whole page; prints the path.
  async screenshot(name) {
    const path = resolve(this.screenshot_dir, `${name}.png`);
    await this.page.screenshot({path, fullPage: true});
    console.log(`browser: screenshot ${path}`);
    return path;
  }

  // Throws when the page has misbehaved so far (run() calls it at the end).
  check_page() {
    if (this.problems.length > 0)
      throw new Error(`the page misbehaved:\n  ${this.problems.join('\n  ')}`);
  }
}

function watch(page, check) {
  page.on('pageerror', (e) => check.problems.push(`uncaught JavaScript error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    // Chromium's own line for an allowed reply is no failure either, nor
    // for /favicon.ico, which the browser asks for by itself (a page that
    // names no icon gets the demo's 404 there): not the page's request.
    const status =
        /^Failed to load resource: the server responded with a status of (\d+)/.exec(m.text());
    const url = m.location().url;
    if (status && url &&
        (check.is_allowed(Number(status[1]), url) || new URL(url).pathname === '/favicon.ico'))
      return;
    check.problems.push(`console error: ${m.text()}`);
  });
  page.on(
      'requestfailed',
      (r) => check.problems.push(
          `request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && !check.is_allowed(r.status(), r.url())) {
      check.problems.push(`request answered ${r.status()}: ${r.request().method()} ${r.url()}`);
    }
  });
}

// Runs body(check) in a fresh headless chromium against argv's base URL;
// exits the process: 0 when body returned and the page behaved, 1 otherwise.
export async function run(body) {
  const [base_url, screenshot_dir] = process.argv.slice(2);
  const name = basename(process.argv[1], '.mjs');
  if (!base_url || !screenshot_dir) {
    console.error(`usage: node ${process.argv[1]} BASE_URL SCREENSHOT_DIR`);
    process.exit(2);
  }
  mkdirSync(screenshot_dir, {recursive: true});

  // The last resort: playwright kills the browser it launched when node exits.
  const deadline = setTimeout(() => {
    console.error(`browser: FAILED: ${name} still running after ${TOTAL_MS} ms`);
    process.exit(1);
  }, TOTAL_MS);

  let browser;
  let check;
  let status = 0;
  try {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: ['--no-sandbox'],  // needed as root; harmless otherwise
      timeout: STEP_MS,
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.setDefaultNavigationTimeout(STEP_MS);
    check = new Check(page, base_url.replace(/\/$/, ''), screenshot_dir, name);
    watch(page, check);
    await body(check);
    check.check_page();
    console.log(`browser: ${name} passed`);
  } catch (e) {
    status = 1;
    console.error(`browser: FAILED: ${name}: ${e.message}`);
    if (check) {
      // When a step failed, what the page did wrong until then may say why.
      if (!e.message.startsWith('the page misbehaved') && check.problems.length > 0) {
        console.error(`browser: and the page misbehaved:\n  ${check.problems.join('\n  ')}`);
      }
      await check.screenshot(`${name}-failure`).catch(() => {});
    }
  } finally {
    // Requests still in flight (a long poll) fail when the page closes:
    // that is not the page's fault, and nothing is watched any more.
    if (browser) await browser.close().catch(() => {});
    clearTimeout(deadline);
  }
  process.exit(status);
}
