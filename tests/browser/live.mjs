// The demo's live page (/live, examples/pages/live.html): it reads /metrics
// every second and charts, with uPlot from npm, requests per second and
// in-flight requests per shard and the latency. Traffic from the page's own
// context makes the rates move; the readout must show them.
import {run} from './browser.mjs';

await run(async (t) => {
  await t.open('/live');
  const scrapes = (n) => t.page.waitForFunction(
      (k) => Number(document.getElementById('status').dataset.samples) >= k, n);
  await scrapes(2);
  await t.page.evaluate(async () => {
    for (let i = 0; i < 40; ++i) {
      const r = await fetch(`/brubeck?name=live${i}`);
      if (r.status !== 200) throw new Error(`/brubeck: ${r.status}`);
    }
  });
  await scrapes(4);
  // Three charts, each drawn on its canvas, with one series per shard.
  const charts = await t.expect_count('.uplot canvas', 3);
  t.expect(charts.length === 3, `expected 3 charts, found ${charts.length}`);
  await t.expect_text('#rps-chart .u-legend', 'shard 0');
  await t.expect_text('#rps-chart .u-legend', 'shard 1');
  await t.expect_text('#status', '2 shards');
  const rps = Number(await t.page.locator('#rps').textContent());
  t.expect(rps > 0, `requests per second should be above 0, is ${rps}`);
  const mean = await t.page.locator('#mean').textContent();
  t.expect(/^\d+\.\d\d$/.test(mean), `mean latency should be a number, is ${mean}`);
  await t.screenshot('live');
});
