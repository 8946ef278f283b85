// The approval page in a real browser on a 390x844 phone viewport: layout checks (no
// horizontal scroll, 16 px text and up, 44 px targets apart), typing the code and
// approving, the keyboard's Enter reaching only the review, denying, a wrong code.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const sim = require('../lib/sim');
const { launch } = require('../lib/browser');

let session;
test.before(async () => { session = await launch(sim.loginUrl()); });
test.after(async () => { await session?.close(); });

async function pollOnce(deviceCode) {
  const reply = await sim.form(`${sim.loginUrl()}/services/oauth2/token`, {
    grant_type: 'device', client_id: sim.CLIENT_ID, code: deviceCode,
  });
  return { status: reply.status, body: JSON.parse(reply.text) };
}

/** The page's layout facts that a phone user feels. */
async function layout(page) {
  return page.evaluate(() => {
    const sizes = [...document.querySelectorAll('body *')]
      .filter((e) => e.childNodes.length && [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim()))
      .map((e) => parseFloat(getComputedStyle(e).fontSize));
    const buttons = [...document.querySelectorAll('button')].map((b) => b.getBoundingClientRect());
    return {
      scrollWidth: document.documentElement.scrollWidth,
      minFont: Math.min(...sizes),
      buttons: buttons.map((r) => ({ top: r.top, bottom: r.bottom, height: r.height, width: r.width })),
    };
  });
}

test('typing the code, Enter reaches the review, Approve connects', async () => {
  const code = await sim.deviceCode();
  const page = await session.context.newPage();
  await page.goto(`${sim.loginUrl()}/setup/connect`);
  let facts = await layout(page);
  assert.equal(facts.scrollWidth, 390, 'no horizontal scrolling');
  assert.ok(facts.minFont >= 16, `smallest text ${facts.minFont}px`);
  assert.ok(facts.buttons.every((b) => b.height >= 44));

  await page.getByLabel('Code shown on your device').fill(code.user_code.toLowerCase());
  await page.keyboard.press('Enter');
  await page.waitForSelector('text=Allow access?');
  assert.equal((await pollOnce(code.device_code)).body.error, 'authorization_pending', 'Enter did not approve');
  assert.ok(await page.isVisible(`text=${code.user_code}`));
  assert.ok(await page.isVisible('text=Check that this code is the one on your device'));
  assert.ok(await page.isVisible('text=sfpair device agent'));
  facts = await layout(page);
  assert.equal(facts.scrollWidth, 390);
  assert.ok(facts.minFont >= 16, `smallest text ${facts.minFont}px`);
  const [approve, deny] = facts.buttons;
  assert.ok(approve.height >= 44 && deny.height >= 44, JSON.stringify(facts.buttons));
  assert.ok(deny.top - approve.bottom >= 16, 'Approve and Deny are apart');

  await page.getByRole('button', { name: 'Approve' }).click();
  await page.waitForSelector('text=Device connected');
  const token = await pollOnce(code.device_code);
  assert.equal(token.status, 200, JSON.stringify(token.body));
  await page.close();
});

test('the one-tap URL, the log-in step, Deny', async () => {
  const code = await sim.deviceCode();
  const page = await session.context.newPage();
  await page.goto(`${sim.loginUrl()}/setup/connect?user_code=${code.user_code}&prompt=login`);
  await page.getByLabel('Password').fill('anything');
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.waitForSelector('text=Allow access?');
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.waitForSelector('text=Access denied');
  assert.equal((await pollOnce(code.device_code)).body.error, 'authorization_pending', 'Salesforce keeps a denied code pending');
  await page.close();
});

test('a wrong code is refused and can be retyped', async () => {
  const page = await session.context.newPage();
  await page.goto(`${sim.loginUrl()}/setup/connect`);
  await page.getByLabel('Code shown on your device').fill('WRONG123');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.waitForSelector('text=invalid or expired code');
  assert.equal(await page.getByLabel('Code shown on your device').inputValue(), 'WRONG123');
  await page.close();
});
