#!/usr/bin/env node
// Apply a queue's wrap-up code to one agent in after-call work. See --help and README.md.
import { parseArgs } from 'node:util';
import { applyDefaultWrapup, createGenesysSession, EXIT_CODES } from './lib/wrapup.mjs';

const USAGE_EXIT = 2;

const HELP = `Usage: node apply-wrapup.mjs --conversation-id ID --participant-id ID --code NAME [options]

Applies the wrap-up code NAME (one of the codes assigned to the participant's queue) to an agent
participant that is in after-call work without a code. Prints one line: "<outcome>: <detail>".

Required (flag or environment variable):
  --client-id ID            GENESYS_CLIENT_ID       OAuth client-credentials client
  --client-secret SECRET    GENESYS_CLIENT_SECRET   prefer the variable: flags show up in ps
  --conversation-id ID      WRAPUP_CONVERSATION_ID
  --participant-id ID       WRAPUP_PARTICIPANT_ID   the agent's participant id
  --code NAME               WRAPUP_CODE             code name, e.g. "No code selected"

Where (one of, default region mypurecloud.com):
  --region DOMAIN|KEY       GENESYS_REGION          e.g. mypurecloud.ie or eu_west_1
  --host URL                GENESYS_HOST            e.g. http://127.0.0.1:8080 (emulator; plain
                                                    http is accepted for loopback only)
Options:
  --notes TEXT              WRAPUP_NOTES            wrap-up notes
  --max-attempts N          WRAPUP_MAX_ATTEMPTS     attempts per call on 429 (default 5)
  --max-retry-after S       WRAPUP_MAX_RETRY_AFTER  give up if Retry-After is longer (default 60)
  --timeout S               WRAPUP_TIMEOUT          per HTTP request (default 10)
  --json                                            print the result as one JSON line
  -h, --help

Outcomes and exit codes:
  applied 0         the code was set (202)
  error 1           anything else: login failed, 429 budget used up, 5xx, network
  (usage) 2         bad or missing arguments
  already_coded 3   the participant already has a code (nothing written)
  too_late 4        after-call work ended without a code (nothing written)
  invalid_code 5    no code of that name is assigned to the participant's queue
  forbidden 6       403: the client lacks a permission (e.g. conversation:participant:wrapup)
  not_eligible 7    not an agent, or not in after-call work yet
  not_found 8       unknown conversation, or participant not in it
`;

const OPTIONS = {
  'client-id': { type: 'string', env: 'GENESYS_CLIENT_ID' },
  'client-secret': { type: 'string', env: 'GENESYS_CLIENT_SECRET' },
  region: { type: 'string', env: 'GENESYS_REGION' },
  host: { type: 'string', env: 'GENESYS_HOST' },
  'conversation-id': { type: 'string', env: 'WRAPUP_CONVERSATION_ID' },
  'participant-id': { type: 'string', env: 'WRAPUP_PARTICIPANT_ID' },
  code: { type: 'string', env: 'WRAPUP_CODE' },
  notes: { type: 'string', env: 'WRAPUP_NOTES' },
  'max-attempts': { type: 'string', env: 'WRAPUP_MAX_ATTEMPTS' },
  'max-retry-after': { type: 'string', env: 'WRAPUP_MAX_RETRY_AFTER' },
  timeout: { type: 'string', env: 'WRAPUP_TIMEOUT' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

class UsageError extends Error {}

/** Flags win over environment variables. */
function readInputs(argv, env) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: stripEnv(OPTIONS), strict: true, allowPositionals: false });
  } catch (error) {
    throw new UsageError(error.message);
  }
  const inputs = {};
  for (const [name, spec] of Object.entries(OPTIONS)) {
    inputs[name] = parsed.values[name] ?? (spec.env ? env[spec.env] || undefined : undefined);
  }
  return inputs;
}

function stripEnv(options) {
  return Object.fromEntries(Object.entries(options).map(([name, { env, ...rest }]) => [name, rest]));
}

function positiveNumber(inputs, name, fallback) {
  if (inputs[name] === undefined) return fallback;
  const value = Number(inputs[name]);
  if (!Number.isFinite(value) || value <= 0) throw new UsageError(`--${name} must be a positive number`);
  return value;
}

function sessionOptions(inputs) {
  const missing = ['client-id', 'client-secret', 'conversation-id', 'participant-id', 'code']
    .filter((name) => !inputs[name]);
  if (missing.length) throw new UsageError(`missing ${missing.map((n) => `--${n}`).join(', ')} (or its variable; see --help)`);
  if (inputs.region && inputs.host) throw new UsageError('give --region or --host, not both');
  return {
    clientId: inputs['client-id'],
    clientSecret: inputs['client-secret'],
    region: inputs.region,
    host: inputs.host,
    maxAttempts: Math.floor(positiveNumber(inputs, 'max-attempts', 5)),
    maxRetryAfterS: positiveNumber(inputs, 'max-retry-after', 60),
    timeoutMs: positiveNumber(inputs, 'timeout', 10) * 1000,
    onRetry: ({ what, attempt, maxAttempts, retryAfterS }) => process.stderr.write(
      `note: ${what}: 429 rate limited, retrying in ${retryAfterS} s (attempt ${attempt} of ${maxAttempts})\n`),
  };
}

function describe(result) {
  const where = `conversation=${result.conversationId} participant=${result.participantId}`;
  return `${result.outcome}: ${result.message} (${where})`;
}

async function main(argv, env) {
  let inputs;
  let session;
  try {
    inputs = readInputs(argv, env);
    if (inputs.help) {
      process.stdout.write(HELP);
      return 0;
    }
    session = createGenesysSession(sessionOptions(inputs));
  } catch (error) {
    if (!(error instanceof UsageError || error instanceof TypeError)) throw error;
    process.stderr.write(`usage error: ${error.message}\n`);
    return USAGE_EXIT;
  }
  const result = await applyDefaultWrapup(session, {
    conversationId: inputs['conversation-id'],
    participantId: inputs['participant-id'],
    codeName: inputs.code,
    notes: inputs.notes,
  });
  process.stdout.write(`${inputs.json ? JSON.stringify(result) : describe(result)}\n`);
  return EXIT_CODES[result.outcome];
}

main(process.argv.slice(2), process.env).then(
  (code) => { process.exitCode = code; },
  (error) => {
    process.stderr.write(`error: ${error?.stack ?? error}\n`);
    process.exitCode = EXIT_CODES.error;
  },
);
