// Reads the web view of a running `tune serve` as a person would, in Debian's chromium (headless),
// and prints one JSON object with what it saw; tests/web/ui_test.cpp decides.
//
//   node view.mjs URL TOKEN
import { chromium } from 'playwright-core';

const [url, token] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const result = { page_errors: [] };
try {
  // bypassCSP: waitForFunction evaluates strings, which the server's policy forbids.
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
  // Each wait may take minutes on a slow, busy machine; ctest's limit is the test's.
  page.setDefaultTimeout(180000);
  // Uncaught exceptions in the page's script (a 404 for a favicon or a run the registry lacks is
  // not one: the page handles those).
  page.on('pageerror', error => result.page_errors.push(String(error)));
  const text = selector => page.$eval(selector, node => node.textContent);

  // The address tune serve prints hands the page its token, kept for the tab.
  await page.goto(url + '/#token=' + encodeURIComponent(token));
  // Adapters: a page of 50, the fall in eval loss coloured as the improvement it is.
  await page.waitForSelector('#page-range');
  result.first_page = await text('#page-range');
  result.first_page_rows = await page.$$eval('#versions tr td:nth-child(2) a', links => links.length);
  result.eval_loss_gain = await page.$$eval('#versions tr', rows => {
    const row = rows.find(r => (r.querySelector('td:nth-child(2) a') || {}).textContent === 'tuned:1');
    const cell = row && row.querySelector('td.gain[data-metric="eval_loss"]');
    return cell ? { text: cell.textContent, class: cell.className.trim() } : null;
  });
  // The gain over the prompted base model ([eval] few_shot), where a version has it.
  result.list_few_shot_gain = await page.$$eval('#versions tr', rows => {
    const row = rows.find(r => (r.querySelector('td:nth-child(2) a') || {}).textContent === 'tuned:1');
    const cells = row ? [...row.querySelectorAll('td.gain[data-metric="exact_match"]')] : [];
    return cells.length === 2 ? { text: cells[1].textContent, class: cells[1].className.trim() } : null;
  });
  await page.click('#next');
  await page.waitForFunction(() => document.getElementById('page-range').textContent.startsWith('versions 51'));
  result.second_page = await text('#page-range');
  result.second_page_rows = await page.$$eval('#versions tr td:nth-child(2) a', links => links.length);

  // A version: tokens/s as a person reads it, and the eval-loss gain coloured by its direction.
  await page.goto(url + '/#/v/tuned/1');
  await page.waitForSelector('#lineage');
  result.tokens_per_second = await page.$$eval('#lineage tr', rows => {
    const row = rows.find(r => r.querySelector('th').textContent === 'tokens/s');
    return row ? row.querySelector('td').textContent : null;
  });
  result.version_gain_class = await page.$eval('#scores td.gain[data-metric="eval_loss"]',
    cell => cell.className.trim());
  result.score_headers = await page.$$eval('#scores th', cells => cells.map(c => c.textContent));
  result.few_shot_gain = await page.$$eval('#scores td.gain[data-metric="exact_match"]',
    cells => cells.length === 2 ? { text: cells[1].textContent, class: cells[1].className.trim() } : null);

  // The sweep: its objective charted, its configurations with their intervals, seeds, statuses.
  await page.goto(url + '/#/sweeps/rank-1');
  await page.waitForSelector('#configurations');
  result.objective = await text('#objective');
  result.chart_titles = await page.$$eval('figure figcaption', captions => captions.map(c => c.textContent));
  result.chart_log_x = await page.$$eval('figure', figures => figures.map(f => f.dataset.logX));
  result.chart_legend = await page.$$eval('figure svg text[fill]', labels => labels.map(l => l.textContent));
  result.interval_header = await text('#interval-name');
  result.configurations = await page.$$eval('#configurations tr[data-configuration]',
    rows => rows.map(r => r.dataset.configuration));
  result.rank16_interval = await page.$eval('#configurations tr[data-configuration="2"] td.interval',
    cell => cell.textContent);
  result.seeds = await page.$$eval('#trials td.seed', cells => cells.map(c => c.textContent));
  result.statuses = await page.$$eval('#trials td.status', cells => cells.map(c => c.textContent));
  result.rank_where = await page.$$eval('#trials td.where', cells => cells.map(c => c.textContent));

  // A Slurm sweep: where each trial ran, and its attempts.
  await page.goto(url + '/#/sweeps/slurm-1');
  await page.waitForSelector('#trials td.where');
  result.slurm_where = await page.$$eval('#trials td.where', cells => cells.map(c => c.textContent));
  result.slurm_attempts = await page.$$eval('#trials td.attempts', cells => cells.map(c => c.textContent));
  result.slurm_attempts_title = await page.$eval('#trials td.attempts', cell => cell.title);
} catch (error) {
  result.error = String(error);
  result.main_text = await browser.contexts()[0]?.pages()[0]?.textContent('main').catch(() => '');
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
