// Screenshots of every approval-page step at 390x844, for docs/simulator.md:
// node screens.js OUTDIR (run through scripts/screens-sim, which starts the simulator).
'use strict';

const path = require('node:path');
const sim = require('./lib/sim');
const { launch } = require('./lib/browser');

async function main() {
  const out = process.argv[2];
  if (!out) throw new Error('usage: node screens.js OUTDIR');
  const session = await launch(sim.loginUrl());
  const shot = async (page, name) => {
    await page.screenshot({ path: path.join(out, `sim-${name}.png`) });
    console.log(`wrote ${path.join(out, `sim-${name}.png`)}`);
  };
  try {
    const page = await session.context.newPage();
    const first = await sim.deviceCode();
    await page.goto(`${sim.loginUrl()}/setup/connect`);
    await page.getByLabel('Code shown on your device').fill(first.user_code);
    await shot(page, 'code-entry');
    await page.keyboard.press('Enter');
    await page.waitForSelector('text=Allow access?');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.waitForSelector('text=Device connected');
    await shot(page, 'approved');

    const second = await sim.deviceCode();
    await page.goto(`${sim.loginUrl()}/setup/connect?user_code=${second.user_code}`);
    await shot(page, 'one-tap');
    await page.getByRole('button', { name: 'Deny' }).click();
    await page.waitForSelector('text=Access denied');
    await shot(page, 'denied');

    await page.goto(`${sim.loginUrl()}/setup/connect`);
    await page.getByLabel('Code shown on your device').fill('WRONG123');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForSelector('text=invalid or expired code');
    await shot(page, 'wrong-code');

    const third = await sim.deviceCode();
    await page.goto(`${sim.loginUrl()}/setup/connect?user_code=${third.user_code}&prompt=login`);
    await shot(page, 'login');
  } finally {
    await session.close();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
