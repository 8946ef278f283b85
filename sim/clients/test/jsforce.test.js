// jsforce against the simulator: query with paging (the page size is 3), create, update,
// upsert by external id, delete, describe, sObject Collections and composite, plus the
// refresh on an expired session. Records are read back through the API.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const jsforce = require('jsforce');
const sim = require('../lib/sim');

const VERSION = '62.0';

async function connect() {
  const token = await sim.tokens();
  assert.equal(token.instance_url, sim.instanceUrl());
  return new jsforce.Connection({
    oauth2: { loginUrl: sim.loginUrl(), clientId: sim.CLIENT_ID },
    instanceUrl: token.instance_url,
    accessToken: token.access_token,
    refreshToken: token.refresh_token,
    version: VERSION,
  });
}

test('jsforce: CRUD, upsert, describe', async () => {
  const conn = await connect();
  const created = await conn.sobject('Account').create({ Name: 'Fleet One', NumberOfEmployees: 4 });
  assert.equal(created.success, true);
  assert.match(created.id, /^001[0-9A-Za-z]{15}$/);
  const updated = await conn.sobject('Account').update({ Id: created.id, Phone: '555-0100' });
  assert.equal(updated.success, true);
  const read = await conn.sobject('Account').retrieve(created.id);
  assert.equal(read.Phone, '555-0100');

  const first = await conn.sobject('Device__c').upsert({ Serial__c: 'SN-1', Name: 'Board 1', Online__c: true }, 'Serial__c');
  assert.equal(first.success, true);
  assert.equal(first.created, true);
  const second = await conn.sobject('Device__c').upsert({ Serial__c: 'SN-1', Firmware__c: 7 }, 'Serial__c');
  assert.equal(second.created, false);
  const device = await conn.sobject('Device__c').retrieve(first.id);
  assert.equal(device.Firmware__c, 7);
  assert.equal(device.Online__c, true);

  const refused = await conn.sobject('Account').create({ Bogus__c: 1, Name: 'x' }).catch((e) => e);
  assert.equal(refused.errorCode, 'INVALID_FIELD');
  const missing = await conn.sobject('Account').create({ Phone: '1' }).catch((e) => e);
  assert.equal(missing.errorCode, 'REQUIRED_FIELD_MISSING');

  const describe = await conn.sobject('Device__c').describe();
  const serial = describe.fields.find((f) => f.name === 'Serial__c');
  assert.equal(serial.externalId, true);
  assert.equal(serial.length, 40);
  const global = await conn.describeGlobal();
  assert.ok(global.sobjects.some((o) => o.name === 'Device__c'));

  const deleted = await conn.sobject('Account').destroy(created.id);
  assert.equal(deleted.success, true);
  const gone = await conn.sobject('Account').retrieve(created.id).catch((e) => e);
  assert.equal(gone.errorCode, 'NOT_FOUND');
});

test('jsforce: query paging, collections, composite, refresh', async () => {
  const conn = await connect();
  const names = ['c', 'a', 'g', 'e', 'b', 'f', 'd'].map((n) => `Paged ${n}`);
  const results = await conn.sobject('Contact').create(names.map((n) => ({ LastName: n })), { allOrNone: true });
  assert.equal(results.length, 7);
  assert.ok(results.every((r) => r.success), JSON.stringify(results));
  const short = new Set(results.map((r) => r.id.slice(0, 15)));
  assert.equal(short.size, 7, '15-character ids are distinct');

  const firstPage = await conn.query("SELECT Id, LastName FROM Contact WHERE LastName != null ORDER BY LastName");
  assert.equal(firstPage.totalSize, 7);
  assert.equal(firstPage.done, false);
  assert.equal(firstPage.records.length, 3);
  assert.match(firstPage.nextRecordsUrl, /\/query\/01g[0-9A-Za-z]{15}-3$/);
  const all = await conn.query('SELECT Id, LastName FROM Contact ORDER BY LastName DESC', { autoFetch: true, maxFetch: 100 });
  assert.deepEqual(all.records.map((r) => r.LastName), [...names].sort().reverse());

  const removed = await conn.sobject('Contact').destroy(results.map((r) => r.id));
  assert.ok(removed.every((r) => r.success));

  const composite = await conn.request({
    method: 'POST',
    url: `/services/data/v${VERSION}/composite`,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      allOrNone: true,
      compositeRequest: [
        { method: 'POST', url: `/services/data/v${VERSION}/sobjects/Account`, referenceId: 'acct', body: { Name: 'Composite Co' } },
        { method: 'POST', url: `/services/data/v${VERSION}/sobjects/Contact`, referenceId: 'tech', body: { LastName: 'Tech', AccountId: '@{acct.id}' } },
      ],
    }),
  });
  assert.deepEqual(composite.compositeResponse.map((r) => r.httpStatusCode), [201, 201]);
  const contact = await conn.sobject('Contact').retrieve(composite.compositeResponse[1].body.id);
  assert.equal(contact.AccountId, composite.compositeResponse[0].body.id);

  // An expired session: jsforce refreshes with the refresh token and retries.
  conn.accessToken = 'expired-session';
  let refreshed = false;
  conn.on('refresh', () => { refreshed = true; });
  const again = await conn.query("SELECT Id FROM Account WHERE Name = 'Composite Co'");
  assert.equal(again.totalSize, 1);
  assert.equal(refreshed, true);

  const malformed = await conn.query('SELECT FROM Account').catch((e) => e);
  assert.equal(malformed.errorCode, 'MALFORMED_QUERY');
});
