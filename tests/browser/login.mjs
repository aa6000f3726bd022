// Brubeck's demo_login (/login, /private, /logout): the private page sends a
// stranger to the login form; a wrong password is refused, the right one
// shows the page; logging out makes it private again.
import {run} from './browser.mjs';

await run(async (t) => {
  await t.open('/private');
  await t.page.waitForURL(/\/login\?next=%2Fprivate$/);
  await t.expect_text('h1', 'Log in');

  await t.page.fill('input[name=name]', 'demo');
  await t.page.fill('input[name=password]', 'not-the-password');
  await t.page.click('button[type=submit]');
  await t.expect_text('.error', 'Wrong name or password.');
  await t.screenshot('login-wrong-password');

  await t.page.fill('input[name=name]', 'demo');
  await t.page.fill('input[name=password]', 'take-five-demo');
  await t.page.click('button[type=submit]');
  await t.page.waitForURL(/\/private$/);
  await t.expect_text('p', 'Hello, demo. Only you see this page.');
  await t.screenshot('login-private');

  await t.page.click('text=Log out');
  await t.page.waitForURL(/\/login$/);
  await t.expect_text('h1', 'Log in');
  t.expect(
      await t.page.locator('text=You are logged in').count() === 0,
      'still logged in after logging out');
  await t.open('/private');
  await t.page.waitForURL(/\/login\?next=%2Fprivate$/);
  await t.screenshot('login-after-logout');
});
