// jsforce, unchanged, against sfsim over HTTPS (the simulator's CA trusted through
// NODE_EXTRA_CA_CERTS). run.sh starts the simulator and passes its --info-file as SFSIM_INFO.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import jsforce from 'jsforce';

const VERSION = '64.0';
const USER = 'admin@acme.example';
const info = JSON.parse(readFileSync(process.env.SFSIM_INFO, 'utf8'));
const base = info.urls.https;
const app = info.apps[0];
// The login host is a leading path segment: https://127.0.0.1:PORT/login.salesforce.com/...
const loginUrl = `${base}/login.salesforce.com`;
const tag = Math.random().toString(36).slice(2, 10);

async function admin(method, path, body) {
  const r = await fetch(`${base}/_sim${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  assert.ok(r.ok, `${method} /_sim${path}: ${r.status} ${await r.clone().text()}`);
  return r.json();
}

let conn;

before(async () => {
  conn = new jsforce.Connection({ loginUrl, version: VERSION });
  await conn.login(USER, 'passwordTOKEN');
});

test('SOAP login sets the session, instance URL and user info', async () => {
  assert.equal(conn.instanceUrl, base);
  assert.match(conn.accessToken, /^00D\w+!/);
  assert.equal(conn.userInfo.organizationId, info.orgs[0].id);
  const bad = new jsforce.Connection({ loginUrl, version: VERSION });
  await assert.rejects(bad.login(USER, 'wrong'), /INVALID_LOGIN|authentication failure/i);
});

test('OAuth 2.0 username-password login', async () => {
  const c = new jsforce.Connection({
    oauth2: { loginUrl, clientId: app.client_id, clientSecret: app.client_secret },
    version: VERSION,
  });
  const user = await c.login(USER, 'password');
  assert.equal(user.organizationId, info.orgs[0].id);
  assert.equal(c.instanceUrl, base);
  const res = await c.query('SELECT COUNT() FROM User');
  assert.ok(res.totalSize >= 4);
});

test('query, queryMore and autoFetch across pages', async () => {
  await admin('POST', '/orgs/acme/records/Contact',
    Array.from({ length: 25 }, (_, i) => ({ LastName: `J${tag}${String(i).padStart(3, '0')}` })));
  await admin('PUT', '/settings', { page_size: 10 });
  try {
    const soql = `SELECT Id, LastName FROM Contact WHERE LastName LIKE 'J${tag}%' ORDER BY LastName`;
    const first = await conn.query(soql);
    assert.equal(first.totalSize, 25);
    assert.equal(first.done, false);
    assert.equal(first.records.length, 10);
    assert.match(first.nextRecordsUrl, /\/query\/01g/);
    const second = await conn.queryMore(first.nextRecordsUrl);
    assert.equal(second.records.length, 10);
    const all = await conn.query(soql, { autoFetch: true, maxFetch: 1000 });
    assert.deepEqual(all.records.map((r) => r.LastName),
      Array.from({ length: 25 }, (_, i) => `J${tag}${String(i).padStart(3, '0')}`));
    const rel = await conn.query("SELECT Username, Manager.Email FROM User WHERE Username = 'ana@acme.example'");
    assert.equal(rel.records[0].Manager.Email, 'vp@acme.example');
  } finally {
    await admin('PUT', '/settings', { page_size: 2000 });
  }
});

test('query errors carry the Salesforce error code', async () => {
  await assert.rejects(conn.query('SELECT Id FROM User WHERE'), (e) => e.errorCode === 'MALFORMED_QUERY');
  await assert.rejects(conn.query('SELECT Nope__c FROM User'), (e) => e.errorCode === 'INVALID_FIELD');
});

test('single-record CRUD', async () => {
  const Contact = conn.sobject('Contact');
  const created = await Contact.create({ LastName: 'Crud', Email: 'crud@x.example' });
  assert.equal(created.success, true);
  assert.match(created.id, /^003/);
  const got = await Contact.retrieve(created.id);
  assert.equal(got.Email, 'crud@x.example');
  assert.equal(got.Name, 'Crud');
  const upd = await Contact.update({ Id: created.id, Email: 'crud2@x.example' });
  assert.equal(upd.success, true);
  assert.equal((await Contact.retrieve(created.id)).Email, 'crud2@x.example');
  const del = await Contact.destroy(created.id);
  assert.equal(del.success, true);
  const gone = await conn.query(`SELECT Id FROM Contact WHERE Id = '${created.id}'`);
  assert.equal(gone.totalSize, 0);
  const all = await conn.query(`SELECT Id, IsDeleted FROM Contact WHERE Id = '${created.id}'`, { scanAll: true });
  assert.equal(all.records[0].IsDeleted, true);
});

test('arrays go through sObject Collections: create, retrieve, update, destroy', async () => {
  const Contact = conn.sobject('Contact');
  const created = await Contact.create([
    { LastName: `C${tag}a`, Email: 'a@x.example' },
    { LastName: `C${tag}b` },
    { Email: 'no-last-name@x.example' },
  ]);
  assert.equal(created.length, 3);
  assert.deepEqual(created.map((r) => r.success), [true, true, false]);
  assert.equal(created[2].errors[0].statusCode, 'REQUIRED_FIELD_MISSING');
  const ids = created.slice(0, 2).map((r) => r.id);

  const got = await Contact.retrieve([ids[1], '003000000000000AAA', ids[0]]);
  assert.equal(got[0].LastName, `C${tag}b`);
  assert.equal(got[1], null);
  assert.equal(got[2].Email, 'a@x.example');
  const some = await Contact.retrieve(ids, { fields: ['Email'] });
  assert.equal(some[0].Email, 'a@x.example');
  assert.equal(some[0].LastName, undefined);

  const updated = await Contact.update([
    { Id: ids[0], Email: 'a2@x.example' },
    { Id: ids[1], Bogus__c: 1 },
  ]);
  assert.equal(updated[0].success, true);
  assert.equal(updated[0].id, ids[0]);
  assert.equal(updated[1].errors[0].statusCode, 'INVALID_FIELD');
  assert.equal((await Contact.retrieve(ids[0])).Email, 'a2@x.example');

  const rolled = await Contact.update(
    [{ Id: ids[0], Email: 'a3@x.example' }, { Id: ids[1], LastName: null }],
    { allOrNone: true },
  );
  assert.equal(rolled[0].errors[0].statusCode, 'ALL_OR_NONE_OPERATION_ROLLED_BACK');
  assert.equal(rolled[1].errors[0].statusCode, 'REQUIRED_FIELD_MISSING');
  assert.equal((await Contact.retrieve(ids[0])).Email, 'a2@x.example');

  const destroyed = await Contact.destroy([...ids, '003000000000000AAA']);
  assert.deepEqual(destroyed.map((r) => r.success), [true, true, false]);
  assert.equal(destroyed[2].errors[0].statusCode, 'INVALID_CROSS_REFERENCE_KEY');
  const again = await Contact.destroy([ids[0]]);
  assert.equal(again[0].errors[0].statusCode, 'ENTITY_IS_DELETED');
});

test('mixed types in one create, allOrNone rollback, allowRecursive over 200', async () => {
  const mixed = await conn.create('Account', []);
  assert.deepEqual(mixed, []);
  const res = await conn.request({
    method: 'POST',
    url: `/services/data/v${VERSION}/composite/sobjects`,
    body: JSON.stringify({
      allOrNone: false,
      records: [
        { attributes: { type: 'Account' }, Name: `M${tag}` },
        { attributes: { type: 'Contact' }, LastName: `M${tag}` },
      ],
    }),
    headers: { 'content-type': 'application/json' },
  });
  assert.match(res[0].id, /^001/);
  assert.match(res[1].id, /^003/);

  const Account = conn.sobject('Account');
  const none = await Account.create([{ Name: `R${tag}` }, { Nope__c: 1 }], { allOrNone: true });
  assert.equal(none[0].errors[0].statusCode, 'ALL_OR_NONE_OPERATION_ROLLED_BACK');
  assert.equal(none[1].errors[0].statusCode, 'INVALID_FIELD');
  assert.equal((await conn.query(`SELECT COUNT() FROM Account WHERE Name = 'R${tag}'`)).totalSize, 0);

  const many = Array.from({ length: 250 }, (_, i) => ({ Name: `B${tag}${i}` }));
  await assert.rejects(Account.create(many), (e) => e.errorCode === 'EXCEEDED_ID_LIMIT');
  const chunked = await Account.create(many, { allowRecursive: true });
  assert.equal(chunked.filter((r) => r.success).length, 250);
  const gone = await Account.destroy(chunked.map((r) => r.id), { allowRecursive: true });
  assert.equal(gone.filter((r) => r.success).length, 250);
});

test('upsert by external id, single and collection', async () => {
  const LR = conn.sobject('Learning_Result__c');
  const one = await LR.upsert({ External_Id__c: `${tag}-1`, Name: 'r1', Score__c: 80 }, 'External_Id__c');
  assert.equal(one.success, true);
  assert.equal(one.created, true);
  const again = await LR.upsert({ External_Id__c: `${tag}-1`, Score__c: 90 }, 'External_Id__c');
  assert.equal(again.created, false);
  const batch = await LR.upsert([
    { External_Id__c: `${tag}-1`, Score__c: 95 },
    { External_Id__c: `${tag}-2`, Name: 'r2' },
  ], 'External_Id__c');
  assert.deepEqual(batch.map((r) => [r.success, r.created]), [[true, false], [true, true]]);
  const rec = await conn.query(`SELECT Name, Score__c FROM Learning_Result__c WHERE External_Id__c = '${tag}-1'`);
  assert.equal(rec.records[0].Score__c, 95);
  assert.equal(rec.records[0].Name, 'r1');
});

test('describe, describeGlobal and limits', async () => {
  const d = await conn.sobject('Contact').describe();
  assert.equal(d.name, 'Contact');
  assert.ok(d.fields.some((f) => f.name === 'External_Id__c' && f.externalId));
  const g = await conn.describeGlobal();
  assert.ok(g.sobjects.some((s) => s.name === 'Learning_Result__c' && s.custom));
  const limits = await conn.limits();
  assert.ok(limits.DailyApiRequests.Max > 0);
  assert.ok(limits.DailyApiRequests.Remaining < limits.DailyApiRequests.Max);
  assert.ok(conn.limitInfo.apiUsage.used >= 1);
});

test('Bulk API 2.0 ingest and query', async () => {
  const records = Array.from({ length: 50 }, (_, i) => ({ External_Id__c: `${tag}-b${i}`, Name: `S${i}`, Score__c: i }));
  const res = await conn.bulk2.loadAndWaitForResults({
    object: 'Survey_Response__c',
    operation: 'upsert',
    externalIdFieldName: 'External_Id__c',
    input: records,
    pollInterval: 200,
    pollTimeout: 30000,
  });
  assert.equal(res.successfulResults.length, 50);
  assert.equal(res.failedResults.length, 0);
  assert.equal(res.successfulResults[0].sf__Created, 'true');
  const bad = await conn.bulk2.loadAndWaitForResults({
    object: 'Contact', operation: 'insert', input: [{ LastName: 'ok', Email: 'ok@x.example' }, { LastName: '', Email: 'x@x.example' }],
    pollInterval: 200, pollTimeout: 30000,
  });
  assert.equal(bad.successfulResults.length, 1);
  assert.match(bad.failedResults[0].sf__Error, /^REQUIRED_FIELD_MISSING/);
  const rows = await (await conn.bulk2.query(
    `SELECT External_Id__c, Score__c FROM Survey_Response__c WHERE External_Id__c LIKE '${tag}-b%'`,
    { pollInterval: 200, pollTimeout: 30000 },
  )).toArray();
  assert.equal(rows.length, 50);
});

test('an expired session is reported as INVALID_SESSION_ID', async () => {
  const tok = await admin('POST', '/token', { username: 'ben@acme.example' });
  const c = new jsforce.Connection({ instanceUrl: tok.instance_url, accessToken: tok.access_token, version: VERSION });
  await c.query('SELECT Id FROM User LIMIT 1');
  await admin('POST', '/orgs/acme/expire_sessions');
  await assert.rejects(c.query('SELECT Id FROM User LIMIT 1'), (e) => e.errorCode === 'INVALID_SESSION_ID');
  // the suite's own session went too: log in again for any later test
  await conn.login(USER, 'passwordTOKEN');
});
