// Debian's chromium through playwright-core, on a phone-sized viewport (390x844), trusting
// only the simulator's server key (its SPKI hash), with a fresh profile (user-data-dir)
// each launch.
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { chromium } = require('playwright-core');

const EXECUTABLE = process.env.SIM_CHROMIUM || '/usr/bin/chromium';

/** base64(sha256(SPKI)) of the certificate the simulator presents at `url`. */
function serverSpki(url) {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port: Number(port), servername: hostname === '127.0.0.1' ? undefined : hostname, ca: fs.readFileSync(process.env.NODE_EXTRA_CA_CERTS) }, () => {
      const cert = new crypto.X509Certificate(socket.getPeerCertificate().raw);
      socket.end();
      const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
      resolve(crypto.createHash('sha256').update(spki).digest('base64'));
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('TLS to the simulator timed out')));
    socket.on('error', reject);
  });
}

async function launch(url) {
  if (!fs.existsSync(EXECUTABLE)) throw new Error(`${EXECUTABLE} is missing: install Debian's chromium`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sim-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    timeout: 60_000,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--ignore-certificate-errors-spki-list=${await serverSpki(url)}`,
    ],
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 1,
    isMobile: true,
    hasTouch: true,
  });
  const close = async () => {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { context, close };
}

module.exports = { launch };
