// The demo's live page (live_route = "/live", actors/live/live.html): it reads /metrics
// every second and charts, with uPlot from npm, requests per second and
// in-flight requests per shard and the latency. While this script keeps slow
// requests in flight (/slow?ms=600, from several connections, so from several
// shards), the page's charts are drawn and its readouts show the traffic:
// requests per second above the page's own scrapes, a p99 at least the
// handlers' sleep, requests in flight, and a row per shard that /metrics
// reports, adding up to the totals.
import {run} from './browser.mjs';

const SLOW_MS = 600;
const CONNECTIONS = 12;

await run(async (t) => {
  // Node's fetch opens a connection per concurrent request: each loop keeps
  // one slow request in flight until stop.
  let stop = false;
  const failures = [];
  const loops = Array.from({length: CONNECTIONS}, async () => {
    try {
      while (!stop) {
        const reply = await fetch(`${t.base_url}/slow?ms=${SLOW_MS}`, {cache: 'no-store'});
        await reply.text();
        if (reply.status !== 200) failures.push(`/slow: status ${reply.status}`);
      }
    } catch (e) {
      failures.push(`/slow: ${e.message}`);
    }
  });
  try {
    await t.open('/live');
    const page = t.page;
    const text = (id) => `Number(document.getElementById('${id}').textContent)`;
    // Three charts, each drawn on its canvas.
    const charts = await t.expect_count('.uplot canvas', 3);
    t.expect(charts.length === 3, `expected 3 charts, found ${charts.length}`);
    // The page's own scrapes alone make about one request a second.
    await page.waitForFunction(`${text('rps')} > 2`);
    // p99 is a bucket's upper bound: at least the handlers' sleep.
    await page.waitForFunction(`${text('p99')} >= ${SLOW_MS * 0.8}`);
    await page.waitForFunction(`${text('inflight')} >= 2`);
    const mean = Number(await page.locator('#mean').textContent());
    t.expect(mean > 0, `mean latency should be above 0, is ${mean}`);

    // A row and a series per shard of /metrics.
    const metrics = await (await fetch(`${t.base_url}/metrics`)).text();
    const shards = [
      ...metrics.matchAll(/^brubeck_in_flight\{shard="(\d+)"\}/gm)
    ].map((m) => m[1]).sort((a, b) => a - b);
    t.expect(shards.length === 3, `/metrics has ${shards.length} shards, the test asks for 3`);
    await t.expect_text('#status', `${shards.length} shards`);
    for (const k of shards) await t.expect_text('#rps-chart .u-legend', `shard ${k}`);
    for (const k of shards) await t.expect_text('#inflight-chart .u-legend', `shard ${k}`);
    const rows = await t.expect_count('#shards tr.shard', shards.length);
    t.expect(
        rows.length === shards.length, `${rows.length} shard rows for ${shards.length} shards`);

    // Read in one go: the page may update between two reads.
    const [cells, total_rps, total_in_flight] = await page.evaluate(
        () => [
            [...document.querySelectorAll('#shards tr.shard')].map(
                (tr) =>
                    [tr.dataset.shard, tr.querySelector('.rate').textContent,
                     tr.querySelector('.in-flight').textContent]),
            Number(document.getElementById('rps').textContent),
            Number(document.getElementById('inflight').textContent),
    ]);
    t.expect(
        JSON.stringify(cells.map((c) => c[0])) === JSON.stringify(shards),
        `shard rows ${JSON.stringify(cells)} for shards ${JSON.stringify(shards)}`);
    for (const [shard, rate, in_flight] of cells) {
      t.expect(
          rate !== '' && Number.isFinite(Number(rate)) && Number(rate) >= 0 && in_flight !== '' &&
              Number.isInteger(Number(in_flight)) && Number(in_flight) >= 0,
          `shard ${shard}: requests/s ${rate}, in flight ${in_flight}`);
    }
    const rate_sum = cells.reduce((a, c) => a + Number(c[1]), 0);
    const in_flight_sum = cells.reduce((a, c) => a + Number(c[2]), 0);
    // Each shown to 0.1: the sum may differ from the total by the rounding.
    t.expect(
        Math.abs(rate_sum - total_rps) <= 0.05 * (shards.length + 1) + 1e-9,
        `requests/s: total ${total_rps}, shards' sum ${rate_sum}`);
    t.expect(
        total_in_flight === in_flight_sum,
        `in flight: total ${total_in_flight}, shards' sum ${in_flight_sum}`);
    t.expect(cells.some((c) => Number(c[2]) > 0), 'no shard has a request in flight');
    console.log(`browser: live page: ${JSON.stringify(cells)}`);
    // A few seconds of history on the charts for the screenshot.
    await page.waitForFunction(
        () => Number(document.getElementById('status').dataset.samples) >= 6);
    await t.screenshot('live');
  } finally {
    stop = true;
    await Promise.all(loops);
  }
  t.expect(failures.length === 0, failures.join('; '));
});
