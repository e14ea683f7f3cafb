// Watch one queue's conversations on the Genesys Cloud emulator (or a real org) over a raw WebSocket,
// subscribing over the socket itself (no REST subscription call). No npm install needed:
//
//   node watch_queue.mjs http://127.0.0.1:PORT CLIENT_ID CLIENT_SECRET Support [EVENTS]
//
// Node 22+ has a global WebSocket; on Node 20 run it with `node --experimental-websocket`.
// Prints `subscribed <topic>`, then `event <conversationId> <agent states>` per conversation event.
import { randomBytes } from 'node:crypto';

async function httpJson(url, { method = 'GET', headers = {}, body } = {}) {
  const response = await fetch(url, { method, headers, body });
  if (!response.ok) throw new Error(`${method} ${url} -> ${response.status} ${await response.text()}`);
  return response.json();
}

async function token(baseUrl, clientId, secret) {
  const basic = Buffer.from(`${clientId}:${secret}`).toString('base64');
  const body = await httpJson(`${baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: 'grant_type=client_credentials',
  });
  return body.access_token;
}

function agentStates(conversation) {
  const states = [];
  for (const p of conversation.participants ?? []) {
    if (p.purpose !== 'agent') continue;
    for (const array of ['calls', 'callbacks', 'chats', 'emails', 'messages']) {
      for (const comm of p[array] ?? []) states.push(`${p.name}:${comm.state}/${comm.afterCallWork?.state ?? '-'}`);
    }
  }
  return states.join(' ');
}

async function watch(baseUrl, clientId, secret, queueName, events = 1) {
  if (typeof WebSocket === 'undefined') throw new Error('no global WebSocket: use Node 22+ or node --experimental-websocket');
  const bearer = { Authorization: `Bearer ${await token(baseUrl, clientId, secret)}` };
  const queues = await httpJson(`${baseUrl}/api/v2/routing/queues?name=${encodeURIComponent(queueName)}`, { headers: bearer });
  const topic = `v2.routing.queues.${queues.entities[0].id}.conversations`;
  const channel = await httpJson(`${baseUrl}/api/v2/notifications/channels`, { method: 'POST', headers: bearer });
  const correlationId = randomBytes(8).toString('hex');
  const ws = new WebSocket(channel.connectUri);
  let seen = 0;
  await new Promise((resolve, reject) => {
    ws.addEventListener('open', () => ws.send(JSON.stringify({ message: 'subscribe', topics: [topic], correlationId })));
    ws.addEventListener('error', () => reject(new Error('WebSocket error')));
    ws.addEventListener('close', () => reject(new Error('the server closed the socket')));
    ws.addEventListener('message', (message) => {
      const frame = JSON.parse(message.data);
      if (frame.correlationId === correlationId) {
        if (frame.result !== '200') return reject(new Error(`subscription refused: ${frame.message}`));
        console.log(`subscribed ${topic}`);
      } else if (frame.result === '404') {
        reject(new Error('the channel is gone: create a new one'));
      } else if (frame.topicName === topic) {
        console.log(`event ${frame.eventBody.id} ${agentStates(frame.eventBody)}`);
        if (++seen >= events) resolve();
      }
    });
  }).finally(() => ws.close());
}

const [baseUrl, clientId, secret, queueName, events] = process.argv.slice(2);
if (!queueName) {
  console.error('usage: node watch_queue.mjs BASE_URL CLIENT_ID CLIENT_SECRET QUEUE_NAME [EVENTS]');
  process.exit(2);
}
watch(baseUrl.replace(/\/$/, ''), clientId, secret, queueName, Number(events ?? 1)).then(
  () => process.exit(0),
  (error) => { console.error(error.message); process.exit(1); },
);
