"""Watch one queue's conversations on the Genesys Cloud emulator (or a real org) over a raw WebSocket.

Subscribes over the socket itself — no REST subscription call — the way many notification clients do:

    python watch_queue.py http://127.0.0.1:PORT CLIENT_ID CLIENT_SECRET "Support" --events 3

Needs only the standard library and `websockets` (pip install websockets). Prints one line per step:
`subscribed <topic>`, then `event <conversationId> <agent states>` for each conversation event.
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import urllib.parse
import urllib.request

from websockets.sync.client import connect


def http_json(url: str, method: str = "GET", headers: dict[str, str] | None = None,
              data: bytes | None = None) -> dict:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"{}")


def token(base_url: str, client_id: str, secret: str) -> str:
    """Client-credentials grant: Basic id:secret, form grant_type=client_credentials."""
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    headers = {"Authorization": f"Basic {basic}",
               "Content-Type": "application/x-www-form-urlencoded"}
    body = http_json(f"{base_url}/oauth/token", "POST", headers, b"grant_type=client_credentials")
    return body["access_token"]


def queue_id(base_url: str, bearer: dict[str, str], name: str) -> str:
    query = urllib.parse.urlencode({"name": name})
    listing = http_json(f"{base_url}/api/v2/routing/queues?{query}", headers=bearer)
    return listing["entities"][0]["id"]


def agent_states(conversation: dict) -> str:
    """`<agent name>:<communication state>/<after-call work state>` for every agent leg."""
    states = []
    for p in conversation.get("participants", []):
        if p.get("purpose") != "agent":
            continue
        for array in ("calls", "callbacks", "chats", "emails", "messages"):
            for comm in p.get(array, []):
                acw = comm.get("afterCallWork", {}).get("state", "-")
                states.append(f"{p.get('name', '?')}:{comm.get('state')}/{acw}")
    return " ".join(states)


def watch(base_url: str, client_id: str, secret: str, queue: str, events: int) -> None:
    bearer = {"Authorization": f"Bearer {token(base_url, client_id, secret)}"}
    topic = f"v2.routing.queues.{queue_id(base_url, bearer, queue)}.conversations"
    channel = http_json(f"{base_url}/api/v2/notifications/channels", "POST", bearer)
    with connect(channel["connectUri"], max_size=None) as ws:
        correlation_id = secrets.token_hex(8)
        ws.send(json.dumps({"message": "subscribe", "topics": [topic],
                            "correlationId": correlation_id}))
        seen = 0
        for text in ws:
            frame = json.loads(text)
            if frame.get("correlationId") == correlation_id:
                if frame.get("result") != "200":
                    raise SystemExit(f"subscription refused: {frame.get('message')}")
                print(f"subscribed {topic}", flush=True)
            elif frame.get("result") == "404":
                raise SystemExit("the channel is gone: create a new one")
            elif frame.get("topicName") == topic:
                body = frame["eventBody"]
                print(f"event {body['id']} {agent_states(body)}", flush=True)
                seen += 1
                if seen >= events:
                    return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("client_id")
    parser.add_argument("client_secret")
    parser.add_argument("queue", help="queue name")
    parser.add_argument("--events", type=int, default=1, help="stop after this many events")
    args = parser.parse_args()
    watch(args.base_url.rstrip("/"), args.client_id, args.client_secret, args.queue, args.events)


if __name__ == "__main__":
    main()
