// The Salesforce CLI's own device-flow code (@salesforce/core DeviceOauthService) against
// the simulator: device login, approval, authorizeAndSave (which reads the user's record
// at sobjects/User/{id} on the instance), then a refresh and a SOQL call on a Connection.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const sim = require('../lib/sim');

test('DeviceOauthService pairs, saves the auth and refreshes', async () => {
  const { DeviceOauthService, AuthInfo, Connection } = require('@salesforce/core');
  const service = await DeviceOauthService.create({ clientId: sim.CLIENT_ID, loginUrl: sim.loginUrl() });
  const login = await service.requestDeviceLogin();
  assert.match(login.user_code, /^[A-Z0-9]{8}$/);
  assert.equal(login.verification_uri, `${sim.loginUrl()}/setup/connect`);
  await sim.approve(login.user_code);
  const approval = await service.awaitDeviceApproval(login);
  assert.ok(approval, 'approved');
  assert.equal(approval.instance_url, sim.instanceUrl());

  const authInfo = await service.authorizeAndSave(approval);
  assert.equal(authInfo.getUsername(), 'technician@sim.example');
  const fields = authInfo.getFields(true);
  assert.equal(fields.instanceUrl, sim.instanceUrl());
  assert.match(fields.orgId, /^00D/);

  // A later process: the saved auth, an expired session, one refresh, then SOQL.
  const saved = await AuthInfo.create({ username: 'technician@sim.example' });
  const connection = await Connection.create({ authInfo: saved });
  connection.accessToken = 'expired-session';
  const users = await connection.query('SELECT Id, Username, Name FROM User');
  assert.equal(users.totalSize, 1);
  assert.equal(users.records[0].Username, 'technician@sim.example');
  assert.notEqual(connection.accessToken, 'expired-session', 'the connection refreshed its token');
});
