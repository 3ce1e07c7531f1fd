// Saves a screenshot of each page of a running `tune serve` (for docs/): the adapters list, a
// version, two versions compared (top, and their outputs on the eval prompts), and a sweep.
//
//   node screenshots.mjs URL TOKEN OUT_DIR NAME:A NAME:B SWEEP
import { chromium } from 'playwright-core';

const [url, token, out, a, b, sweep] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 760 } });
await page.goto(url + '/#token=' + encodeURIComponent(token));  // kept for the tab
// Each page's ready selector is one only that page has: a hash change keeps the old page until
// the new one renders.
const pages = [
  ['adapters', '/', '#versions tr:nth-child(2)'],
  ['version', `/#/v/${a.replace(':', '/')}`, '#lineage'],
  ['compare', `/#/compare/${a},${b}`, '#config-diff'],
  ['outputs', `/#/compare/${a},${b}`, '#config-diff', '#outputs'],
  ['sweep', `/#/sweeps/${sweep}`, '#trials'],
];
for (const [name, path, ready, scrollTo] of pages) {
  await page.goto(url + path);
  await page.waitForSelector(ready);
  // A hash change keeps the scroll position of the page before: start each page at its top.
  await page.evaluate(() => window.scrollTo(0, 0));
  if (scrollTo) {
    await page.waitForSelector(scrollTo);
    await page.evaluate(selector => {
      const top = document.querySelector(selector).getBoundingClientRect().top;
      window.scrollTo(0, top + window.scrollY - 60);  // the table's heading row stays in view
    }, scrollTo);
  }
  await page.screenshot({ path: `${out}/web-${name}.png`, fullPage: false });
}
await browser.close();
