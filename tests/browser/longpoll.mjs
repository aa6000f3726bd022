// Brubeck's long-polling page (/longpoll, examples/pages/longpoll.html): its
// JavaScript asks /feed again and again, and each answer (the time, after
// 2 s) appears on top of the list.
import {run} from './browser.mjs';

await run(async (t) => {
  await t.open('/longpoll');
  await t.expect_text('#header', 'Brubeck simple long polling demo');
  const updates = await t.expect_count('#messages .msg.new', 2);
  const time = /^The current time is: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
  for (const text of updates) t.expect(time.test(text), `not a time: ${text}`);
  await t.screenshot('longpoll');
});
