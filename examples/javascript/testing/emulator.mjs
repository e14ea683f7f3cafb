// Start the project's Genesys Cloud emulator as a child process and drive its control plane.
// Lives outside test/ because `node --test` runs every .mjs file under a test/ directory.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const READY_TIMEOUT_MS = 20_000;

function pythonPath() {
  const python = process.env.WRAPUPD_PYTHON || `${REPO}.venv/bin/python`;
  if (!existsSync(python)) {
    throw new Error(`no Python for the emulator at ${python}: run \`make venv\` at the repo root or set WRAPUPD_PYTHON`);
  }
  return python;
}

/** Resolves with a handle once the emulator has printed its ready line. */
export async function startEmulator({ org = 'demo', args = [] } = {}) {
  const child = spawn(pythonPath(), ['-m', 'genesys_emulator', '--port', '0', '--org', org, ...args], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const orphanGuard = () => child.kill('SIGKILL'); // if the test process dies before stop()
  process.once('exit', orphanGuard);
  child.once('exit', () => process.off('exit', orphanGuard));
  let stderrTail = '';
  child.stderr.on('data', (chunk) => { stderrTail = (stderrTail + chunk).slice(-4000); }); // keep the pipe drained
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = await Promise.race([
    firstLine(child.stdout),
    exited.then(({ code, signal }) => { throw new Error(`emulator exited (${code ?? signal}) before ready:\n${stderrTail}`); }),
    timeout(READY_TIMEOUT_MS, 'emulator ready line'),
  ]).catch((error) => { child.kill('SIGKILL'); throw error; });
  const info = JSON.parse(ready);
  return new Emulator(child, exited, info);
}

function firstLine(stream) {
  return new Promise((resolve) => {
    const lines = createInterface({ input: stream });
    lines.once('line', (line) => resolve(line)); // later lines (none expected) are read and dropped
  });
}

function timeout(ms, what) {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms).unref());
}

class Emulator {
  constructor(child, exited, info) {
    this.child = child;
    this.exited = exited;
    this.baseUrl = info.base_url;
    this.clientId = info.client_id;
    this.clientSecret = info.client_secret;
  }

  async control(method, path, body) {
    const response = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${path} -> ${response.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }

  reset(options = {}) { return this.control('POST', '/_emulator/reset', options); }
  fault(fault) { return this.control('POST', '/_emulator/faults', fault); }
  action(conversationId, action) { return this.control('POST', `/_emulator/conversations/${conversationId}/actions`, action); }
  conversation(conversationId) { return this.control('GET', `/_emulator/conversations/${conversationId}`); }
  calls() { return this.control('GET', '/_emulator/calls'); }

  async groundTruthOf(participantId) {
    const truth = await this.control('GET', '/_emulator/ground-truth');
    return truth.participants.find((p) => p.participantId === participantId);
  }

  /** Starts a conversation: `{conversationId, participantId, queueId, ...}`. */
  startConversation(spec) {
    return this.control('POST', '/_emulator/conversations', { media: 'call', talk_s: 0.05, outcome: 'nothing', ...spec });
  }

  /** A conversation whose first agent is in after-call work without a code. */
  async agentInAcw(queue = 'Support') {
    const started = await this.startConversation({ queue });
    await this.waitFor(async () => {
      const conversation = await this.conversation(started.conversationId);
      const agent = conversation.participants.find((p) => p.id === started.participantId);
      return Boolean(agent?.startAcwTime);
    }, 'agent in after-call work');
    return started;
  }

  /** Polls an observable fact every 10 ms. */
  async waitFor(predicate, what, { timeoutMs = 5000 } = {}) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await predicate()) return;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    throw new Error(`timed out waiting for ${what}`);
  }

  /** Count of calls in the call log for method + route template + status. */
  async callCount(method, path, status) {
    const { calls } = await this.calls();
    return calls.filter((c) => c.method === method && c.path === path && (status === undefined || c.status === status))
      .reduce((sum, c) => sum + c.count, 0);
  }

  async stop() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const killer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(killer);
  }
}
