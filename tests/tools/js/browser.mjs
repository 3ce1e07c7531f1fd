// Drives the web view of a running `tune serve` in Debian's chromium (headless) and prints one JSON
// object with what it saw; tests/web/server_test.cpp decides. Optionally saves a screenshot of
// each page into SHOTS_DIR.
//
//   node browser.mjs URL TOKEN [SHOTS_DIR]
import { chromium } from 'playwright-core';

const [url, token, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const result = { dialogs: [], console_errors: [] };
try {
  // bypassCSP: playwright's waitForFunction evaluates strings, which the server's policy forbids;
  // without the policy the escaping is tested on its own (server_test checks the header).
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
  // Each wait may take minutes on a slow, busy machine; ctest's limit is the test's.
  page.setDefaultTimeout(180000);
  page.on('dialog', async dialog => { result.dialogs.push(dialog.message()); await dialog.dismiss(); });
  page.on('console', message => { if (message.type() === 'error') result.console_errors.push(message.text()); });
  page.on('pageerror', error => result.console_errors.push(String(error)));
  const shot = async name => { if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }); };

  // Adapters: every version listed; sorting by version ascending puts version 1 first.
  await page.goto(url + '/#token=' + encodeURIComponent(token));
  await page.waitForSelector('#versions tr:nth-child(2)');
  result.listed = await page.$$eval('#versions tr td:nth-child(2) a', links => links.map(a => a.textContent));
  await page.click('#versions th[data-key="version"]');
  await page.waitForFunction(() => document.querySelector('#versions th[data-key="version"]').textContent.includes('▼'));
  await page.click('#versions th[data-key="version"]');
  await page.waitForFunction(() => document.querySelector('#versions th[data-key="version"]').textContent.includes('▲'));
  result.sorted = await page.$$eval('#versions tr td:nth-child(2) a', links => links.map(a => a.textContent));
  result.headers = await page.$$eval('#versions th', cells => cells.map(c => c.textContent));
  await shot('adapters');

  // A version: its config shown as text, whatever it holds.
  await page.goto(url + '/#/v/rank/4');
  await page.waitForSelector('#config');
  result.config_text = await page.textContent('#config');
  result.injected_nodes = await page.$$eval('main img, main script', nodes => nodes.length);
  result.xss = await page.evaluate(() => window.__xss === 1);
  await shot('version');

  // Compare three: the differing key is highlighted.
  await page.goto(url + '/#/compare/rank:1,rank:2,rank:3');
  await page.waitForSelector('#config-diff');
  result.diff_headers = await page.$$eval('#config-diff th', cells => cells.map(c => c.textContent));
  result.changed_keys = await page.$$eval('#config-diff tr.changed', rows => rows.map(r => r.dataset.key));
  await page.waitForSelector('#outputs');
  result.output_cells = await page.$$eval('#outputs td',
    cells => cells.map(c => (c.querySelector('.prediction') || c).textContent));
  result.output_headers = await page.$$eval('#outputs th', cells => cells.map(c => c.textContent));
  result.injected_nodes_compare = await page.$$eval('main img, main script', nodes => nodes.length);
  await shot('compare');

  // Promote from the UI with the token.
  await page.goto(url + '/#/v/rank/2');
  await page.waitForSelector('#promote');
  await page.fill('#token', token);
  await page.dispatchEvent('#token', 'change');
  await page.fill('#alias', 'production');
  await page.click('#promote');
  await page.waitForFunction(() => document.getElementById('alias-message').textContent !== '');
  result.promote_message = await page.textContent('#alias-message');
  await shot('promoted');
} catch (error) {
  result.error = String(error);
  result.main_text = await browser.contexts()[0]?.pages()[0]?.textContent('main').catch(() => '');
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
