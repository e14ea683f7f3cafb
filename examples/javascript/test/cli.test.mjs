// apply-wrapup.mjs as a team would run it: one line per outcome, one exit code per outcome.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { startEmulator } from '../testing/emulator.mjs';

const SCRIPT = fileURLToPath(new URL('../apply-wrapup.mjs', import.meta.url));
const PATCH_GLOB = '/api/v2/conversations/*/participants/*';

let emulator;

before(async () => {
  emulator = await startEmulator();
  await emulator.reset();
});
after(async () => { await emulator?.stop(); });

/** Runs the script; resolves with {code, stdout, stderr} whatever the exit code. */
function run(args, env = {}) {
  const base = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GENESYS_CLIENT_ID: emulator.clientId,
    GENESYS_CLIENT_SECRET: emulator.clientSecret,
    GENESYS_HOST: emulator.baseUrl,
  };
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; });
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

function target(conversation, code = 'No code selected') {
  return ['--conversation-id', conversation.conversationId, '--participant-id', conversation.participantId, '--code', code];
}

function assertOneLine(result, outcome, exitCode) {
  const lines = result.stdout.trimEnd().split('\n');
  assert.equal(lines.length, 1, result.stdout);
  assert.match(lines[0], new RegExp(`^${outcome}: `), `${result.stdout}${result.stderr}`);
  assert.equal(result.code, exitCode, `${result.stdout}${result.stderr}`);
}

describe('apply-wrapup.mjs', () => {
  test('--help lists the inputs and every outcome with its exit code', async () => {
    const result = await run(['--help'], { GENESYS_CLIENT_ID: '' });
    assert.equal(result.code, 0);
    for (const line of ['--host URL', 'GENESYS_CLIENT_SECRET', 'applied 0', 'already_coded 3', 'too_late 4', 'invalid_code 5', 'forbidden 6']) {
      assert.ok(result.stdout.includes(line), `--help mentions ${line}`);
    }
  });

  test('usage errors exit 2 and say what is missing', async () => {
    const missing = await run(['--code', 'x']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing --conversation-id, --participant-id/);
    const unknown = await run(['--frobnicate']);
    assert.equal(unknown.code, 2);
  });

  test('applied (0), then already_coded (3) for the same participant', async () => {
    const conversation = await emulator.agentInAcw('Sales');
    assertOneLine(await run(target(conversation, 'Quote sent')), 'applied', 0);
    assertOneLine(await run(target(conversation, 'Quote sent')), 'already_coded', 3);
    const truth = await emulator.groundTruthOf(conversation.participantId);
    assert.equal(truth.wrapup.name, 'Quote sent');
    assert.equal(truth.apiWrapupCalls, 1);
  });

  test('inputs come from the environment when no flag is given', async () => {
    const conversation = await emulator.agentInAcw('Support');
    const result = await run([], {
      WRAPUP_CONVERSATION_ID: conversation.conversationId,
      WRAPUP_PARTICIPANT_ID: conversation.participantId,
      WRAPUP_CODE: 'Resolved',
    });
    assertOneLine(result, 'applied', 0);
  });

  test('too_late (4): the agent skipped wrap-up on an optional queue', async () => {
    const conversation = await emulator.agentInAcw('Sales');
    await emulator.action(conversation.conversationId, { action: 'skip' });
    const result = await run(target(conversation));
    assertOneLine(result, 'too_late', 4);
    assert.match(result.stdout, /skipped/);
  });

  test('invalid_code (5)', async () => {
    const conversation = await emulator.agentInAcw('Support');
    assertOneLine(await run(target(conversation, 'Not a real code')), 'invalid_code', 5);
  });

  test('forbidden (6), and the line names the missing permission', async () => {
    const conversation = await emulator.agentInAcw('Support');
    const org = await emulator.control('GET', '/_emulator/org');
    const secret = org.clients.find((c) => c.id === 'no-wrapup').secret;
    const result = await run(target(conversation), { GENESYS_CLIENT_ID: 'no-wrapup', GENESYS_CLIENT_SECRET: secret });
    assertOneLine(result, 'forbidden', 6);
    assert.match(result.stdout, /conversation:participant:wrapup/);
  });

  test('not_found (8)', async () => {
    assertOneLine(await run(['--conversation-id', 'nope', '--participant-id', 'nope', '--code', 'x']), 'not_found', 8);
  });

  test('429: notes each wait on stderr, still one line and exit 0', async () => {
    const conversation = await emulator.agentInAcw('Support');
    await emulator.fault({ kind: 'http', method: 'PATCH', path: PATCH_GLOB, status: 429, retry_after: 1, count: 1 });
    const result = await run(target(conversation));
    assertOneLine(result, 'applied', 0);
    assert.match(result.stderr, /429 rate limited, retrying in 1 s \(attempt 1 of 5\)/);
    assert.equal((await emulator.groundTruthOf(conversation.participantId)).wrapup.by, 'api');
  });

  test('error (1): rate limited beyond --max-attempts', async () => {
    const conversation = await emulator.agentInAcw('Support');
    await emulator.fault({ kind: 'http', method: 'PATCH', path: PATCH_GLOB, status: 429, retry_after: 1, count: 1 });
    const result = await run([...target(conversation), '--max-attempts', '1', '--json']);
    assert.equal(result.code, 1);
    const parsed = JSON.parse(result.stdout);
    assert.equal(parsed.outcome, 'error');
    assert.equal(parsed.retryable, true);
  });
});
