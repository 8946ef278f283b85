// jsforce's Streaming API client (faye, long polling) against the simulator's /cometd:
// replay of everything retained (-2), replay from a stored replay id (jsforce's Replay
// extension), live events published meanwhile, change events of a record written over
// REST, the org's client slot freed by a disconnect, and a refused session reaching
// jsforce's AuthFailure extension. The simulator holds a connect 2 s (start-sim.sh).
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const jsforce = require('jsforce');
const { StreamingExtension } = require('jsforce/api/streaming');
const sim = require('../lib/sim');

const VERSION = '62.0';
const CHANNEL = '/event/Device_Command__e';
const CHANGES = '/data/Device__ChangeEvent';

async function connect() {
  const token = await sim.tokens();
  return new jsforce.Connection({
    oauth2: { loginUrl: sim.loginUrl(), clientId: sim.CLIENT_ID },
    instanceUrl: token.instance_url,
    accessToken: token.access_token,
    refreshToken: token.refresh_token,
    version: VERSION,
  });
}

/** Resolves once `ready()` is true; fails after `ms`. */
async function until(what, ready, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Publishes a command over REST; returns its EventUuid from OPERATION_ENQUEUED. */
async function publish(conn, command) {
  const result = await conn.sobject('Device_Command__e').create({ Device_Id__c: 'GW-1', Command__c: command });
  assert.equal(result.success, true, JSON.stringify(result));
  assert.equal(result.errors[0].statusCode, 'OPERATION_ENQUEUED');
  return result.errors[0].message;
}

/** A faye client with jsforce's Replay extension, collecting what arrives on `channel`. */
async function listen(conn, channel, replayFrom) {
  const received = [];
  const client = conn.streaming.createClient([new StreamingExtension.Replay(channel, replayFrom)]);
  const subscription = client.subscribe(channel, (message) => received.push(message));
  await subscription; // resolves once /meta/subscribe succeeded
  return { client, received };
}

async function freeSlots(conn) {
  const limits = await conn.request(`/services/data/v${VERSION}/limits`);
  return limits.DurableStreamingApiConcurrentClients;
}

test('jsforce streaming: replay -2, replay from a stored id, live events', async () => {
  const conn = await connect();
  const before = await freeSlots(conn);
  const uuids = [];
  for (const command of ['one', 'two', 'three']) uuids.push(await publish(conn, command));

  // Everything retained, then a live event published while connected.
  const all = await listen(conn, CHANNEL, -2);
  await until('the three retained events', () => all.received.length >= 3);
  assert.deepEqual(all.received.map((m) => m.event.EventUuid), uuids);
  assert.deepEqual(all.received.map((m) => m.payload.Command__c), ['one', 'two', 'three']);
  const ids = all.received.map((m) => m.event.replayId);
  assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]), `growing: ${ids}`);
  uuids.push(await publish(conn, 'live'));
  await until('the live event', () => all.received.length >= 4);
  assert.equal(all.received[3].event.EventUuid, uuids[3]);
  assert.equal(all.received[3].payload.Command__c, 'live');
  assert.equal(all.received.length, 4, 'each event once');

  // A second client resumes from a stored replay id: the events after it only.
  const resumed = await listen(conn, CHANNEL, ids[1]);
  await until('the events after the stored id', () => resumed.received.length >= 2);
  assert.deepEqual(resumed.received.map((m) => m.event.EventUuid), uuids.slice(2));
  uuids.push(await publish(conn, 'both'));
  await until('the live event on both', () => resumed.received.length >= 3 && all.received.length >= 5);
  assert.equal(resumed.received[2].event.EventUuid, uuids[4]);
  assert.equal(all.received[4].event.EventUuid, uuids[4]);

  // Two clients hold two of the org's slots; a disconnect gives each back.
  const during = await freeSlots(conn);
  assert.equal(during.Remaining, before.Remaining - 2);
  all.client.disconnect();
  resumed.client.disconnect();
  let after = during;
  const deadline = Date.now() + 10_000;
  while (after.Remaining !== before.Remaining && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    after = await freeSlots(conn);
  }
  assert.equal(after.Remaining, before.Remaining, 'disconnects free the slots');
});

test('jsforce streaming: change events of a record written over REST', async () => {
  const conn = await connect();
  const changes = await listen(conn, CHANGES, -1);
  const created = await conn.sobject('Device__c').create({ Serial__c: 'SN-CDC', Name: 'Hub', Firmware__c: 1 });
  await conn.sobject('Device__c').update({ Id: created.id, Firmware__c: 2 });
  await until('a CREATE and an UPDATE', () => changes.received.length >= 2);
  const [create, update] = changes.received.map((m) => m.payload.ChangeEventHeader);
  assert.equal(create.changeType, 'CREATE');
  assert.deepEqual(create.recordIds, [created.id]);
  assert.equal(changes.received[0].payload.Serial__c, 'SN-CDC');
  assert.equal(update.changeType, 'UPDATE');
  assert.deepEqual(update.changedFields.sort(), ['Firmware__c', 'LastModifiedDate']);
  assert.equal(changes.received[1].payload.Firmware__c, 2);
  assert.equal(changes.received[1].payload.Name, undefined, 'only changed fields');
  changes.client.disconnect();
});

test('jsforce streaming: a refused session reaches the AuthFailure extension', async () => {
  const conn = await connect();
  conn.accessToken = '00DSIM0000000012BA!not.a.session';
  let failure;
  const client = conn.streaming.createClient([
    new StreamingExtension.AuthFailure((message) => { failure = message; }),
  ]);
  client.subscribe(CHANNEL, () => assert.fail('no event may arrive'));
  await until('the handshake refusal', () => failure !== undefined);
  assert.equal(failure.channel, '/meta/handshake');
  assert.equal(failure.error, '403::Handshake denied');
  assert.equal(failure.ext.sfdc.failureReason, '401::Authentication invalid');
  assert.equal(failure.advice.reconnect, 'none');
  client.disconnect();
});
