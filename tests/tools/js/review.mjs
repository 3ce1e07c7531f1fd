// Drives the review pages of a running `tune serve` in Debian's chromium (headless) as two raters
// and an approver would, and prints one JSON object with what it saw; tests/web/server_test.cpp
// decides. The review's outputs say whether they are the good or the bad one ("good ..." or
// "bad ..."), never which version wrote them.
//
//   node review.mjs URL ALICE_TOKEN BOB_TOKEN [SHOTS_DIR]
import { chromium } from 'playwright-core';

const [url, alice, bob, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu'],
});
const result = { dialogs: [], console_errors: [], good_on_left: 0, good_on_right: 0, names_seen: 0 };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 }, bypassCSP: true });
  // Each wait may take minutes on a slow, busy machine; ctest's limit is the test's.
  page.setDefaultTimeout(180000);
  page.on('dialog', async dialog => { result.dialogs.push(dialog.message()); await dialog.dismiss(); });
  page.on('console', message => { if (message.type() === 'error') result.console_errors.push(message.text()); });
  page.on('pageerror', error => result.console_errors.push(String(error)));
  const shot = async name => { if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true }); };
  const as = async token => {
    await page.fill('#token', token);
    await page.dispatchEvent('#token', 'change');
  };
  const message = async (selector, before) => {
    await page.waitForFunction(([s, b]) => {
      const node = document.querySelector(s);
      return node && node.textContent !== '' && node.textContent !== b;
    }, [selector, before]);
    return page.textContent(selector);
  };

  // Each rater judges every pair: the good output wins, by keyboard for alice and by buttons for
  // bob. The pair id in the message changes when the next pair is shown.
  const rate = async (token, useKeys) => {
    await page.goto(url + '/#/reviews');
    await as(token);
    await page.goto(url + '/#/review/qa');
    // Keys typed into the token box are text: the shortcuts work with nothing focused.
    await page.evaluate(() => document.activeElement.blur());
    let judged = 0;
    for (;;) {
      await page.waitForSelector('#left, #done');
      if (await page.$('#done')) break;
      const before = await page.textContent('#rating-message');
      const left = await page.textContent('#left');
      const right = await page.textContent('#right');
      const main = await page.textContent('main');
      if (/rank:|base model/.test(main)) result.names_seen += 1;
      const goodLeft = left.startsWith('good');
      result[goodLeft ? 'good_on_left' : 'good_on_right'] += 1;
      if (judged === 0) await shot(`rating-${useKeys ? 'keys' : 'buttons'}`);
      if (useKeys) await page.keyboard.press(goodLeft ? 'a' : 'b');
      else await page.click(goodLeft ? '#judge-left' : '#judge-right');
      judged += 1;
      await page.waitForFunction(b => {
        const m = document.getElementById('rating-message');
        return document.getElementById('done') || (m && m.textContent !== b);
      }, before);
    }
    return judged;
  };

  result.alice_judged = await rate(alice, true);

  // A promotion the policy blocks says why: bob's judgements are still missing.
  await page.goto(url + '/#/v/rank/2');
  await page.waitForSelector('#promote');
  await page.waitForSelector('#policies .policy');
  result.policy_before = await page.$$eval('#policies li', items => items.map(i => i.textContent));
  await page.fill('#alias', 'production');
  await page.click('#promote');
  result.promote_refused = await message('#alias-message', '');
  // Setting the policy aside is an admin's: alice, of the promote role, is refused.
  await page.fill('#override-reason', 'demo tomorrow');
  await page.click('#override');
  result.override_refused = await message('#alias-message', result.promote_refused);
  await shot('promotion-refused');

  result.bob_judged = await rate(bob, false);

  await page.goto(url + '/#/results/qa');
  await page.waitForSelector('#results tr[data-contestant]');
  result.results_order = await page.$$eval('#results tr[data-contestant]', rows => rows.map(r => r.dataset.contestant));
  result.results_summary = await page.textContent('#results-summary');
  result.results_headers = await page.$$eval('#results th', cells => cells.map(c => c.textContent));
  result.agreement = await page.textContent('#agreement');
  await shot('results');

  // With every condition met alice asks; the request waits for bob, who approves it.
  await page.goto(url + '/#/reviews');
  await as(alice);
  await page.goto(url + '/#/v/rank/2');
  await page.waitForSelector('#policies .policy');
  result.version_judgements = await page.$$eval('#judgements td', cells => cells.map(c => c.textContent));
  await page.fill('#alias', 'production');
  await page.click('#promote');
  result.promote_asked = await message('#alias-message', '');
  await page.goto(url + '/#/reviews');
  await as(bob);
  // Loaded afresh as bob (the token is kept for the tab): nothing of alice's page, whose last
  // requests may still be finishing on a busy machine, is left to answer the click.
  await page.goto(url + '/#/v/rank/2');
  await page.reload();
  await page.waitForSelector('#requests button.approve');
  await page.click('#requests button.approve');
  result.approved = await message('#approve-message', '');
  await shot('approved');
} catch (error) {
  result.error = String(error);
  result.main_text = await browser.contexts()[0]?.pages()[0]?.textContent('main').catch(() => '');
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
