// Talking to the simulator that scripts/test-clients started: its URLs (SIM_LOGIN_URL,
// SIM_INSTANCE_URL), a device code approved through the /__mock hook, and a token pair.
// Node trusts the simulator's CA through NODE_EXTRA_CA_CERTS, set by the script.
'use strict';

const CLIENT_ID = '3MVG9sfpair.sim.consumer.key';

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run this through scripts/test-clients`);
  return value;
}

const loginUrl = () => env('SIM_LOGIN_URL');
const instanceUrl = () => env('SIM_INSTANCE_URL');

async function form(url, fields) {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, text: await response.text() };
}

/** Step 1 of the device flow: `{user_code, device_code, verification_uri, interval}`. */
async function deviceCode(scope = 'api refresh_token') {
  const reply = await form(`${loginUrl()}/services/oauth2/token`, {
    response_type: 'device_code',
    client_id: CLIENT_ID,
    scope,
  });
  if (reply.status !== 200) throw new Error(`device code: ${reply.status} ${reply.text}`);
  return JSON.parse(reply.text);
}

/** Approves a code as a test hook, without the page. */
async function approve(userCode) {
  const reply = await form(`${loginUrl()}/__mock/approve?user_code=${encodeURIComponent(userCode)}`, {});
  if (reply.status !== 200) throw new Error(`approve: ${reply.status} ${reply.text}`);
}

/** A fresh token pair through the device flow. */
async function tokens() {
  const code = await deviceCode();
  await approve(code.user_code);
  const reply = await form(`${loginUrl()}/services/oauth2/token`, {
    grant_type: 'device',
    client_id: CLIENT_ID,
    code: code.device_code,
  });
  if (reply.status !== 200) throw new Error(`token: ${reply.status} ${reply.text}`);
  return JSON.parse(reply.text);
}

module.exports = { CLIENT_ID, loginUrl, instanceUrl, deviceCode, approve, tokens, form };
