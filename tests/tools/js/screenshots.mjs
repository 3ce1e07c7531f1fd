// Saves a screenshot of each page of a running `tune serve` (for docs/): the adapters list, a
// version, two versions compared, and a sweep.
//
//   node screenshots.mjs URL OUT_DIR NAME:A NAME:B SWEEP
import { chromium } from 'playwright-core';

const [url, out, a, b, sweep] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
const pages = [
  ['adapters', '/', '#versions tr:nth-child(2)'],
  ['version', `/#/v/${a.replace(':', '/')}`, '#config'],
  ['compare', `/#/compare/${a},${b}`, '#outputs'],
  ['sweep', `/#/sweeps/${sweep}`, '#trials'],
];
for (const [name, path, ready] of pages) {
  await page.goto(url + path);
  await page.waitForSelector(ready);
  await page.screenshot({ path: `${out}/web-${name}.png`, fullPage: false });
}
await browser.close();
