/**
 * Apply a wrap-up code to an agent in after-call work, with the official Genesys Cloud
 * JavaScript SDK (`purecloud-platform-client-v2`).
 *
 * Import it into your own service:
 *
 *   import { createGenesysSession, applyDefaultWrapup } from './lib/wrapup.mjs';
 *   const session = createGenesysSession({ clientId, clientSecret, region: 'mypurecloud.ie' });
 *   const result = await applyDefaultWrapup(session, { conversationId, participantId, codeName: 'No code selected' });
 *   // result.outcome is one of OUTCOMES; nothing is thrown for platform answers.
 *
 * The platform contract this follows is docs in the wrapupd repository
 * (GENESYS.md §1 auth, §3 errors and 429, §6 applying a code, §7 queue codes). In short:
 * - the PATCH body is only `{"wrapup": {code, name, notes}}`: any other field of the participant
 *   request is an action (hold, disconnect, ...) and can fail the call with 403;
 * - `code` is the code's id, and it must be one of the codes assigned to the participant's queue;
 * - the SDK retries nothing (not even 429): every retry decision here is ours, and we wait
 *   exactly as long as `Retry-After` says, within a budget;
 * - the SDK never renews a client-credentials token: we log in again before it expires and once
 *   after a 401.
 */
import platformClient from 'purecloud-platform-client-v2';

/** Every result of `applyDefaultWrapup`, as printed by the CLI. */
export const OUTCOMES = Object.freeze({
  APPLIED: 'applied',
  ALREADY_CODED: 'already_coded',
  TOO_LATE: 'too_late',
  INVALID_CODE: 'invalid_code',
  FORBIDDEN: 'forbidden',
  NOT_ELIGIBLE: 'not_eligible',
  NOT_FOUND: 'not_found',
  ERROR: 'error',
});

/** Process exit code per outcome (2 is left for usage errors, as most CLIs do). */
export const EXIT_CODES = Object.freeze({
  applied: 0,
  error: 1,
  already_coded: 3,
  too_late: 4,
  invalid_code: 5,
  forbidden: 6,
  not_eligible: 7,
  not_found: 8,
});

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);
const TOKEN_RENEW_MARGIN_MS = 60_000;
const CODES_PAGE_SIZE = 100;

/** A failed platform call, whatever shape the SDK rejected with. */
export class GenesysApiError extends Error {
  constructor(message, { status = 0, code = '', contextId = '', retryAfterS = null, body = null } = {}) {
    super(message);
    this.name = 'GenesysApiError';
    this.status = status;
    this.code = code;
    this.contextId = contextId;
    this.retryAfterS = retryAfterS;
    this.body = body;
  }
}

/**
 * `Retry-After` in seconds: delta-seconds or an HTTP date; null when absent or unreadable.
 * @param {string | undefined | null} value
 * @param {number} [nowMs]
 */
export function parseRetryAfter(value, nowMs = Date.now()) {
  if (value === undefined || value === null || String(value).trim() === '') return null;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const at = Date.parse(text);
  return Number.isNaN(at) ? null : Math.max(0, (at - nowMs) / 1000);
}

function headerOf(headers, name) {
  if (!headers) return undefined;
  if (typeof headers.get === 'function') return headers.get(name) ?? undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : headers[key];
}

/**
 * Normalise an SDK rejection. With `setReturnExtendedResponses(true)` API calls reject with
 * `{status, headers, body, error}`; the token call rejects with the raw axios error
 * (`error.response.{status, headers, data}` — and `error.config` holds the Basic header, so never
 * log it whole); transport failures are plain Errors; the SDK throws strings for missing arguments.
 */
export function toApiError(rejection, what) {
  if (rejection instanceof GenesysApiError) return rejection;
  if (typeof rejection === 'string') return new GenesysApiError(`${what}: ${rejection}`);
  const response = rejection?.response;
  const extended = rejection && typeof rejection === 'object' && 'status' in rejection && 'body' in rejection;
  const status = extended ? rejection.status : response?.status;
  if (!status) {
    const reason = rejection?.code || rejection?.message || String(rejection);
    return new GenesysApiError(`${what}: no answer from the platform (${reason})`);
  }
  const headers = extended ? rejection.headers : response.headers;
  const body = (extended ? rejection.body : response.data) ?? null;
  const code = body?.code || body?.error || '';
  const detail = body?.message || body?.error_description || body?.description || '';
  const contextId = body?.contextId || headerOf(headers, 'inin-correlation-id') || '';
  return new GenesysApiError(
    `${what}: ${status}${code ? ` ${code}` : ''}${detail ? `: ${detail}` : ''}`,
    { status, code, contextId, retryAfterS: parseRetryAfter(headerOf(headers, 'retry-after')), body },
  );
}

/**
 * Point an SDK client at a region, or at an explicit host such as the local emulator.
 *
 * `setEnvironment()` always builds `https://api.<env>` and `https://login.<env>`, so it cannot
 * express `http://127.0.0.1:PORT`. The SDK's own gateway setting can: `setGateway({protocol, host,
 * port})` replaces both the API and the login base URL (login path = `/oauth/token` on the same
 * host, which is what the emulator serves).
 */
export function configureHost(apiClient, { region, host } = {}) {
  if (region && host) throw new TypeError('give either region or host, not both');
  if (!host) {
    const domain = platformClient.PureCloudRegionHosts[region] ?? region ?? 'mypurecloud.com';
    apiClient.setGateway(undefined);
    apiClient.setEnvironment(domain);
    return { api: `https://api.${domain}`, login: `https://login.${domain}` };
  }
  const url = new URL(host);
  const path = url.pathname.replace(/\/+$/, '');
  if (url.protocol === 'https:' && url.hostname.startsWith('api.') && !url.port && !path) {
    return configureHost(apiClient, { region: url.hostname.slice(4) });
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    throw new TypeError(`refusing ${url.protocol}//${url.host}: plain http is only for a loopback emulator`);
  }
  apiClient.setGateway({
    protocol: url.protocol.slice(0, -1),
    host: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path_params_api: path,
    path_params_login: path,
  });
  const base = `${url.origin}${path}`;
  return { api: base, login: base };
}

/**
 * The SDK's Configuration reads `~/.genesyscloudjavascript/config` at construction and keeps
 * watching it; a stray file there can switch the host, gateway or logging (logging can include
 * headers). Stop watching and put back the defaults, so only the code decides.
 */
function pinConfiguration(apiClient) {
  const config = apiClient.config;
  config.live_reload_config = false;
  config.setConfigPath('');
  config.refresh_access_token = false;
  const logger = config.logger;
  logger.log_level = 'none';
  logger.log_file_path = undefined;
  logger.log_request_body = false;
  logger.log_response_body = false;
  logger.setLogger();
}

/**
 * An authenticated-on-demand SDK client plus the retry policy for its calls.
 * @param {object} options
 * @param {string} options.clientId
 * @param {string} options.clientSecret
 * @param {string} [options.region] e.g. `mypurecloud.ie` or the SDK key `eu_west_1` (default mypurecloud.com)
 * @param {string} [options.host] e.g. `http://127.0.0.1:8080` (emulator) or `https://api.mypurecloud.ie`
 * @param {number} [options.timeoutMs=10000] per HTTP request
 * @param {number} [options.maxAttempts=5] per call, counting the first; only 429 is retried
 * @param {number} [options.maxRetryAfterS=60] a longer Retry-After gives up instead of waiting
 * @param {(ms: number) => Promise<void>} [options.sleep]
 * @param {(info: {what: string, attempt: number, maxAttempts: number, retryAfterS: number}) => void} [options.onRetry]
 */
export function createGenesysSession(options) {
  const { clientId, clientSecret, region, host, timeoutMs = 10_000 } = options;
  if (!clientId || !clientSecret) throw new TypeError('clientId and clientSecret are required');
  const apiClient = new platformClient.ApiClientClass(); // our own, not the module-wide singleton
  pinConfiguration(apiClient);
  const endpoints = configureHost(apiClient, { region, host });
  apiClient.setHttpClient(new platformClient.DefaultHttpClient(timeoutMs));
  apiClient.setReturnExtendedResponses(true); // errors then keep status and headers (Retry-After)
  const session = {
    apiClient,
    endpoints,
    conversations: new platformClient.ConversationsApi(apiClient),
    routing: new platformClient.RoutingApi(apiClient),
    maxAttempts: options.maxAttempts ?? 5,
    maxRetryAfterS: options.maxRetryAfterS ?? 60,
    sleep: options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms))),
    onRetry: options.onRetry ?? (() => {}),
    login: null,
  };
  session.login = singleFlight(async () => {
    try {
      await apiClient.loginClientCredentialsGrant(clientId, clientSecret);
    } catch (rejection) {
      throw toApiError(rejection, `login at ${endpoints.login}`);
    }
  });
  return session;
}

function singleFlight(fn) {
  let running = null;
  return () => {
    running ??= fn().finally(() => { running = null; });
    return running;
  };
}

async function ensureToken(session) {
  const expiry = session.apiClient.authData?.tokenExpiryTime ?? 0;
  const token = session.apiClient.authData?.accessToken;
  if (!token || expiry - Date.now() < TOKEN_RENEW_MARGIN_MS) await session.login();
}

/**
 * Run one SDK call: fresh token first; on 401 log in again once; on 429 wait `Retry-After`
 * (default 1 s) and try again, up to `maxAttempts`. A 429 means the request was not processed,
 * so repeating even the PATCH is safe. Nothing else is retried.
 */
export async function callWithRetry(session, what, call) {
  let renewed = false;
  for (let attempt = 1; ; attempt += 1) {
    await ensureToken(session);
    try {
      return await call();
    } catch (rejection) {
      const error = toApiError(rejection, what);
      if (error.status === 401 && !renewed) {
        renewed = true;
        session.apiClient.clearAccessToken();
        attempt -= 1;
        continue;
      }
      const retryAfterS = error.retryAfterS ?? 1;
      const retryable = error.status === 429 && attempt < session.maxAttempts && retryAfterS <= session.maxRetryAfterS;
      if (!retryable) throw error;
      session.onRetry({ what, attempt, maxAttempts: session.maxAttempts, retryAfterS });
      await session.sleep(retryAfterS * 1000);
    }
  }
}

/** The wrap-up code already on a participant (participant level or any communication), or ''. */
export function existingWrapupCode(participant) {
  if (participant.wrapup?.code) return participant.wrapup.code;
  for (const communication of communicationsOf(participant)) {
    if (communication.wrapup?.code) return communication.wrapup.code;
  }
  return '';
}

function describeExisting(participant) {
  const code = existingWrapupCode(participant);
  const name = participant.wrapup?.code === code ? participant.wrapup?.name : undefined;
  return name && name !== code ? `${JSON.stringify(name)} (${code})` : code;
}

function communicationsOf(participant) {
  const media = ['calls', 'callbacks', 'chats', 'cobrowsesessions', 'emails', 'messages', 'screenshares', 'socialExpressions', 'videos'];
  return media.flatMap((name) => participant[name] ?? []);
}

/**
 * Where a participant stands for a wrap-up write (GENESYS.md §5/§6):
 * `pending` (agent in ACW, no code) | `not_agent` | `coded` | `not_in_acw` | `acw_ended`.
 */
export function acwState(participant) {
  if (participant.purpose !== 'agent') return 'not_agent';
  if (existingWrapupCode(participant)) return 'coded';
  if (!participant.startAcwTime) return 'not_in_acw';
  const acwStates = communicationsOf(participant).map((c) => c.afterCallWork?.state).filter(Boolean);
  const ended = participant.endAcwTime || participant.wrapupSkipped
    || (acwStates.length > 0 && !acwStates.includes('pending'));
  return ended ? 'acw_ended' : 'pending';
}

/**
 * The code called `codeName` among the codes assigned to the queue (every page), or null.
 * Exact name first; a case-insensitive match only if it is unambiguous.
 */
export async function findQueueWrapupCode(session, queueId, codeName, { pageSize = CODES_PAGE_SIZE } = {}) {
  const codes = [];
  for (let pageNumber = 1; ; pageNumber += 1) {
    const page = await callWithRetry(session, `GET codes of queue ${queueId}`,
      () => session.routing.getRoutingQueueWrapupcodes(queueId, { pageSize, pageNumber }));
    const entities = page.body?.entities ?? [];
    codes.push(...entities);
    if (entities.length === 0 || pageNumber >= (page.body?.pageCount ?? pageNumber)) break;
  }
  const wanted = codeName.trim();
  const exact = codes.find((c) => c.name === wanted);
  if (exact) return { code: exact, available: codes };
  const folded = codes.filter((c) => c.name?.toLowerCase() === wanted.toLowerCase());
  return { code: folded.length === 1 ? folded[0] : null, available: codes };
}

async function readParticipant(session, conversationId, participantId) {
  const answer = await callWithRetry(session, `GET conversation ${conversationId}`,
    () => session.conversations.getConversation(conversationId));
  return (answer.body?.participants ?? []).find((p) => p.id === participantId) ?? null;
}

function result(outcome, message, extra = {}) {
  return { outcome, exitCode: EXIT_CODES[outcome], message, ...extra };
}

function outcomeOfState(state, participant) {
  switch (state) {
    case 'not_agent':
      return result(OUTCOMES.NOT_ELIGIBLE, `participant is a ${participant.purpose || 'non-agent'} participant, not an agent`);
    case 'coded':
      return result(OUTCOMES.ALREADY_CODED, `participant already has wrap-up code ${describeExisting(participant)}`);
    case 'not_in_acw':
      return result(OUTCOMES.NOT_ELIGIBLE, 'agent is not in after-call work yet');
    case 'acw_ended':
      return result(OUTCOMES.TOO_LATE, `after-call work already ended without a code${participant.wrapupSkipped ? ' (skipped)' : ''}`);
    default:
      return null;
  }
}

function outcomeOfError(error) {
  if (error.status === 403) return result(OUTCOMES.FORBIDDEN, error.message, { contextId: error.contextId });
  if (error.status === 404) return result(OUTCOMES.NOT_FOUND, error.message, { contextId: error.contextId });
  const retryable = error.status === 0 || error.status === 429 || error.status >= 500;
  return result(OUTCOMES.ERROR, error.message, { contextId: error.contextId, retryable });
}

/**
 * Apply the queue's code called `codeName` to one agent participant, if and only if that agent is
 * in after-call work without a code. Resolves with `{outcome, exitCode, message, ...}`; it does
 * not throw for anything the platform answers.
 * @param {ReturnType<typeof createGenesysSession>} session
 * @param {{conversationId: string, participantId: string, codeName: string, notes?: string, codesPageSize?: number}} request
 */
export async function applyDefaultWrapup(session, { conversationId, participantId, codeName, notes, codesPageSize }) {
  if (!conversationId || !participantId || !codeName) {
    throw new TypeError('conversationId, participantId and codeName are required');
  }
  const ids = { conversationId, participantId };
  try {
    const participant = await readParticipant(session, conversationId, participantId);
    if (!participant) return result(OUTCOMES.NOT_FOUND, `participant ${participantId} is not in conversation ${conversationId}`, ids);
    const early = outcomeOfState(acwState(participant), participant);
    if (early) return { ...early, ...ids };
    const queueId = participant.queueId;
    if (!queueId) return result(OUTCOMES.NOT_ELIGIBLE, 'participant has no queue, so no queue code applies', ids);
    const { code, available } = await findQueueWrapupCode(session, queueId, codeName, { pageSize: codesPageSize });
    if (!code) {
      const names = available.map((c) => JSON.stringify(c.name)).join(', ') || 'none';
      return result(OUTCOMES.INVALID_CODE, `no code named ${JSON.stringify(codeName)} on queue ${queueId} (assigned: ${names})`, { ...ids, queueId });
    }
    return await patchWrapup(session, { ...ids, queueId, code, notes });
  } catch (error) {
    if (!(error instanceof GenesysApiError)) throw error;
    return { ...outcomeOfError(error), ...ids };
  }
}

async function patchWrapup(session, { conversationId, participantId, queueId, code, notes }) {
  const wrapup = { code: code.id, name: code.name };
  if (notes) wrapup.notes = notes;
  const extra = { conversationId, participantId, queueId, code: { id: code.id, name: code.name } };
  try {
    await callWithRetry(session, `PATCH participant ${participantId}`,
      () => session.conversations.patchConversationParticipant(conversationId, participantId, { wrapup }));
    return result(OUTCOMES.APPLIED, `code ${JSON.stringify(code.name)} (${code.id}) set`, extra);
  } catch (error) {
    if (!(error instanceof GenesysApiError) || ![400, 404, 409].includes(error.status)) throw error;
    // Refused: most likely the agent coded or ACW ended between our read and our write. Look again.
    const now = await readParticipant(session, conversationId, participantId);
    const after = now && outcomeOfState(acwState(now), now);
    return after ? { ...after, ...extra, refusal: error.message } : { ...outcomeOfError(error), ...extra };
  }
}
