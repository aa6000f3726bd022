// Brubeck's AutoAPI todo page (/todos, examples/pages/todos.html): add three
// todos, tick one, delete one, see a refused one's message, and find the
// same list after a reload.
import {run} from './browser.mjs';

await run(async (t) => {
  await t.open('/todos');
  const page = t.page;
  for (const text of ['Buy milk', 'Write <b>tests</b>', 'Ship it']) {
    await page.fill('#text', text);
    await page.click('#add button');
    await t.expect_text('#todos li span', text);
  }
  await t.expect_count('#todos li', 3);
  await page.check('#todos li:nth-child(2) input[type=checkbox]');
  await t.expect_count('#todos li.done', 1);
  await page.click('#todos li:nth-child(3) button');
  await page.waitForFunction(() => document.querySelectorAll('#todos li').length === 2);
  // Over the model's max_length: the API's 400 and its field message.
  t.allow(400, '/todo/');
  await page.fill('#text', 'x'.repeat(201));
  await page.click('#add button');
  await t.expect_text('#error', 'text: must be at most 200 characters');

  await page.reload();
  await t.expect_count('#todos li', 2);
  const rows = await page.$$eval(
      '#todos li',
      (items) => items.map(
          (li) => [li.querySelector('span').textContent, li.querySelector('input').checked]));
  t.expect(
      JSON.stringify(rows) === JSON.stringify([['Buy milk', false], ['Write <b>tests</b>', true]]),
      `after the reload: ${JSON.stringify(rows)}`);
  await t.screenshot('todos');
});
