// applyDefaultWrapup() against the project's Genesys Cloud emulator (a child process).
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { applyDefaultWrapup, createGenesysSession, OUTCOMES } from '../lib/wrapup.mjs';
import { startEmulator } from '../testing/emulator.mjs';

const PATCH_ROUTE = '/api/v2/conversations/{id}/participants/{pid}';
const PATCH_GLOB = '/api/v2/conversations/*/participants/*';
const NO_CODE_SELECTED = '93dee37f-fde2-5003-b568-e69863b84879';

let emulator;

before(async () => { emulator = await startEmulator(); });
after(async () => { await emulator?.stop(); });
beforeEach(async () => { await emulator.reset(); });

function session(overrides = {}) {
  return createGenesysSession({
    clientId: emulator.clientId,
    clientSecret: emulator.clientSecret,
    host: emulator.baseUrl,
    ...overrides,
  });
}

function apply(conversation, codeName = 'No code selected', options = {}) {
  return applyDefaultWrapup(options.session ?? session(), {
    conversationId: conversation.conversationId,
    participantId: conversation.participantId,
    codeName,
    ...options.request,
  });
}

describe('outcomes', () => {
  test('applied: sets the queue code on an agent in ACW, with one PATCH of only `wrapup`', async () => {
    const conversation = await emulator.agentInAcw('Support');
    const result = await apply(conversation, 'No code selected', { request: { notes: 'set by example' } });

    assert.equal(result.outcome, OUTCOMES.APPLIED, result.message);
    assert.equal(result.exitCode, 0);
    assert.deepEqual(result.code, { id: NO_CODE_SELECTED, name: 'No code selected' });
    const truth = await emulator.groundTruthOf(conversation.participantId);
    assert.equal(truth.wrapup.by, 'api');
    assert.equal(truth.wrapup.code, NO_CODE_SELECTED);
    assert.equal(truth.apiWrapupCalls, 1);
    assert.equal(await emulator.callCount('PATCH', PATCH_ROUTE, 202), 1);
    const live = await emulator.conversation(conversation.conversationId);
    const agent = live.participants.find((p) => p.id === conversation.participantId);
    assert.equal(agent.wrapup.notes, 'set by example');
  });

  test('already_coded: an agent-chosen code is never overwritten', async () => {
    const conversation = await emulator.agentInAcw('Support');
    await emulator.action(conversation.conversationId, { action: 'agent_wrapup', code: 'Resolved' });

    const result = await apply(conversation);

    assert.equal(result.outcome, OUTCOMES.ALREADY_CODED, result.message);
    assert.equal(result.exitCode, 3);
    assert.match(result.message, /Resolved/);
    const truth = await emulator.groundTruthOf(conversation.participantId);
    assert.equal(truth.wrapup.by, 'agent');
    assert.equal(truth.apiWrapupCalls, 0);
  });

  test('too_late: ACW ended without a code, nothing is written', async () => {
    const conversation = await emulator.agentInAcw('Support');
    await emulator.action(conversation.conversationId, { action: 'end_acw' });

    const result = await apply(conversation);

    assert.equal(result.outcome, OUTCOMES.TOO_LATE, result.message);
    assert.equal(result.exitCode, 4);
    assert.equal((await emulator.groundTruthOf(conversation.participantId)).apiWrapupCalls, 0);
  });

  test('invalid_code: a code of another queue is refused before any write', async () => {
    const conversation = await emulator.agentInAcw('Support');

    const result = await apply(conversation, 'Sale closed'); // a Sales code

    assert.equal(result.outcome, OUTCOMES.INVALID_CODE, result.message);
    assert.equal(result.exitCode, 5);
    assert.match(result.message, /"No code selected"/); // lists what is assigned
    assert.equal((await emulator.groundTruthOf(conversation.participantId)).apiWrapupCalls, 0);
  });

  test('forbidden: a client without conversation:participant:wrapup gets 403', async () => {
    const conversation = await emulator.agentInAcw('Support');
    const restricted = session({ clientId: 'no-wrapup', clientSecret: await secretOf('no-wrapup') });

    const result = await apply(conversation, 'No code selected', { session: restricted });

    assert.equal(result.outcome, OUTCOMES.FORBIDDEN, result.message);
    assert.equal(result.exitCode, 6);
    assert.match(result.message, /conversation:participant:wrapup/);
    const truth = await emulator.groundTruthOf(conversation.participantId);
    assert.equal(truth.wrapup.code, null);
    assert.equal(truth.acwEndedAt, null);
    assert.equal(truth.apiWrapupCalls, 1);
  });

  test('not_eligible: the customer participant is not an agent', async () => {
    const conversation = await emulator.agentInAcw('Support');
    const live = await emulator.conversation(conversation.conversationId);
    const customer = live.participants.find((p) => p.purpose === 'customer');

    const result = await apply({ ...conversation, participantId: customer.id });

    assert.equal(result.outcome, OUTCOMES.NOT_ELIGIBLE, result.message);
    assert.equal(result.exitCode, 7);
  });

  test('not_eligible: an agent still talking is not in ACW', async () => {
    const conversation = await emulator.startConversation({ queue: 'Support', talk_s: 30 });

    const result = await apply(conversation);

    assert.equal(result.outcome, OUTCOMES.NOT_ELIGIBLE, result.message);
    assert.match(result.message, /not in after-call work/);
  });

  test('not_found: unknown conversation', async () => {
    const result = await apply({ conversationId: 'no-such-conversation', participantId: 'p' });

    assert.equal(result.outcome, OUTCOMES.NOT_FOUND, result.message);
    assert.equal(result.exitCode, 8);
  });
});

describe('rate limits and races', () => {
  test('429 on the PATCH: waits Retry-After each time, then exactly one write lands', async () => {
    const conversation = await emulator.agentInAcw('Support');
    await emulator.fault({ kind: 'http', method: 'PATCH', path: PATCH_GLOB, status: 429, retry_after: 1, count: 2 });
    const retries = [];
    const started = Date.now();

    const result = await apply(conversation, 'No code selected', { session: session({ onRetry: (r) => retries.push(r) }) });

    assert.equal(result.outcome, OUTCOMES.APPLIED, result.message);
    assert.deepEqual(retries.map((r) => [r.attempt, r.retryAfterS]), [[1, 1], [2, 1]]);
    assert.ok(Date.now() - started >= 1900, 'waited the two Retry-After seconds');
    assert.equal(await emulator.callCount('PATCH', PATCH_ROUTE, 429), 2);
    assert.equal(await emulator.callCount('PATCH', PATCH_ROUTE, 202), 1);
    const truth = await emulator.groundTruthOf(conversation.participantId);
    assert.equal(truth.wrapup.by, 'api');
    assert.equal(truth.wrapup.code, NO_CODE_SELECTED);
    assert.equal(truth.apiWrapupCalls, 3); // two refused with 429, one applied
  });

  test('429 with a Retry-After beyond the budget: gives up at once, retryable error', async () => {
    const conversation = await emulator.agentInAcw('Support');
    await emulator.fault({ kind: 'http', method: 'PATCH', path: PATCH_GLOB, status: 429, retry_after: 120, count: 1 });
    const started = Date.now();

    const result = await apply(conversation, 'No code selected', { session: session({ maxRetryAfterS: 60 }) });

    assert.equal(result.outcome, OUTCOMES.ERROR, result.message);
    assert.equal(result.exitCode, 1);
    assert.equal(result.retryable, true);
    assert.match(result.message, /429 too\.many\.requests\.retry\.after/);
    assert.ok(Date.now() - started < 1000, 'did not wait');
    assert.equal((await emulator.groundTruthOf(conversation.participantId)).wrapup.code, null);
  });

  test('429 on reads too: the queue-code listing is retried', async () => {
    const conversation = await emulator.agentInAcw('Support');
    await emulator.fault({ kind: 'http', method: 'GET', path: '/api/v2/routing/queues/*/wrapupcodes', status: 429, retry_after: 1, count: 1 });

    const result = await apply(conversation);

    assert.equal(result.outcome, OUTCOMES.APPLIED, result.message);
    assert.equal(await emulator.callCount('GET', '/api/v2/routing/queues/{id}/wrapupcodes', 429), 1);
  });

  test('the agent codes while our PATCH is in flight: already_coded, not an error', async () => {
    const conversation = await emulator.agentInAcw('Support');
    await emulator.fault({ kind: 'latency', method: 'PATCH', path: PATCH_GLOB, seconds: 0.5, count: 1 });

    const pending = apply(conversation);
    await emulator.waitFor(async () => (await emulator.groundTruthOf(conversation.participantId)).apiWrapupCalls === 1, 'our PATCH to arrive');
    await emulator.action(conversation.conversationId, { action: 'agent_wrapup', code: 'Escalated' });
    const result = await pending;

    assert.equal(result.outcome, OUTCOMES.ALREADY_CODED, result.message);
    assert.match(result.refusal, /400/);
    assert.equal((await emulator.groundTruthOf(conversation.participantId)).wrapup.by, 'agent');
  });
});

describe('codes, tokens, hosts', () => {
  test('the code is found on any page of the queue listing', async () => {
    const conversation = await emulator.agentInAcw('Billing'); // 6 codes
    const result = await apply(conversation, 'Refund issued', { request: { codesPageSize: 1 } });

    assert.equal(result.outcome, OUTCOMES.APPLIED, result.message);
    assert.equal(await emulator.callCount('GET', '/api/v2/routing/queues/{id}/wrapupcodes', 200), 6);
  });

  test('an expired token is renewed once and the call goes through', async () => {
    const shared = session();
    const first = await emulator.agentInAcw('Support');
    assert.equal((await apply(first, 'No code selected', { session: shared })).outcome, OUTCOMES.APPLIED);
    await emulator.fault({ kind: 'expire_tokens' });
    const second = await emulator.agentInAcw('Support');

    const result = await apply(second, 'No code selected', { session: shared });

    assert.equal(result.outcome, OUTCOMES.APPLIED, result.message);
    assert.equal(await emulator.callCount('POST', '/oauth/token', 200), 2);
  });

  test('bad credentials: an error naming the login failure, without the secret', async () => {
    const conversation = await emulator.agentInAcw('Support');
    const result = await apply(conversation, 'No code selected', { session: session({ clientSecret: 'wrong-secret-value' }) });

    assert.equal(result.outcome, OUTCOMES.ERROR);
    assert.match(result.message, /login .*401 invalid_client/);
    assert.doesNotMatch(JSON.stringify(result), /wrong-secret-value/);
  });

  test('nothing listening: a retryable error, not a crash', async () => {
    const result = await apply({ conversationId: 'c', participantId: 'p' }, 'x', { session: session({ host: 'http://127.0.0.1:9' }) });

    assert.equal(result.outcome, OUTCOMES.ERROR);
    assert.equal(result.retryable, true);
    assert.match(result.message, /no answer from the platform \(ECONNREFUSED\)/);
  });

  test('plain http is refused for anything but loopback', () => {
    assert.throws(() => session({ host: 'http://api.example.com' }), /only for a loopback emulator/);
    const regional = session({ host: 'https://api.mypurecloud.ie' });
    assert.deepEqual(regional.endpoints, { api: 'https://api.mypurecloud.ie', login: 'https://login.mypurecloud.ie' });
    assert.equal(session({ host: undefined, region: 'eu_west_1' }).endpoints.login, 'https://login.mypurecloud.ie');
  });
});

async function secretOf(clientId) {
  const org = await emulator.control('GET', '/_emulator/org');
  return org.clients.find((c) => c.id === clientId).secret;
}
