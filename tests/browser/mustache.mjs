// Brubeck's demo_mustache (/mustache, examples/templates/success.mustache):
// the client's name shown as text however much markup it holds, the tags
// listed, and the 404 page from examples/templates/errors/404.mustache.
import {run} from './browser.mjs';

await run(async (t) => {
  await t.open('/mustache?name=ada');
  await t.expect_text('h1', 'Take five, ada!');
  // The page's own link asks for a name with markup: it must come back as
  // text, not as a <b> element.
  await t.page.click('a');
  await t.page.waitForURL(/name=%3Cb%3Eyou/);
  await t.expect_text('h1', 'Take five, <b>you</b>!');
  t.expect(await t.page.locator('h1 b').count() === 0, 'the name was rendered as markup');
  const tags = await t.expect_count('li', 2);
  t.expect(tags.join(',') === 'cool,jazz', `tags: ${tags.join(',')}`);
  await t.screenshot('mustache');

  await t.open('/no/such/page', 404);
  await t.expect_text('h1', '404 Not Found');
  await t.expect_text('code', '/no/such/page');
  await t.screenshot('mustache-404');
});
