"""Every route the emulator serves. Route templates double as call-log paths."""

from __future__ import annotations

from aiohttp import web

from . import control, control_faults, control_org, control_traffic
from .handlers import analytics, conversations, notifications, oauth, routing, stream, users

WRAPUP_WRITE_ROUTES: set[str] = set()
# SDK 269 declares media-specific wrap-up writes for these arrays only (no chats twins).
WRITABLE_MEDIA_ARRAYS = ("calls", "callbacks", "emails", "messages")


def setup_api(app: web.Application) -> None:
    r = app.router
    r.add_post("/oauth/token", oauth.token)
    r.add_get("/oauth/authorize", oauth.authorize, allow_head=False)
    r.add_get("/api/v2/routing/queues", routing.list_queues, allow_head=False)
    r.add_get("/api/v2/routing/queues/{id}", routing.get_queue, allow_head=False)
    r.add_get(
        "/api/v2/routing/queues/{id}/wrapupcodes", routing.queue_wrapup_codes, allow_head=False
    )
    r.add_get("/api/v2/routing/wrapupcodes", routing.list_wrapup_codes, allow_head=False)
    r.add_get("/api/v2/routing/wrapupcodes/{id}", routing.get_wrapup_code, allow_head=False)
    r.add_get("/api/v2/users/me", users.users_me, allow_head=False)
    _notifications(r)
    _conversations(r)
    r.add_post("/api/v2/analytics/conversations/details/query", analytics.query)
    r.add_get("/channels/{id}", stream.websocket, allow_head=False)


def _notifications(r: web.UrlDispatcher) -> None:
    base = "/api/v2/notifications/channels"
    r.add_post(base, notifications.create_channel)
    r.add_get(base, notifications.list_channels, allow_head=False)
    r.add_route("HEAD", base + "/{id}", notifications.head_channel)
    subs = base + "/{id}/subscriptions"
    r.add_get(subs, notifications.get_subscriptions, allow_head=False)
    r.add_put(subs, notifications.put_subscriptions)
    r.add_post(subs, notifications.post_subscriptions)
    r.add_delete(subs, notifications.delete_subscriptions)


def _conversations(r: web.UrlDispatcher) -> None:
    base = "/api/v2/conversations"
    r.add_get(base + "/{id}", conversations.get_conversation, allow_head=False)
    r.add_patch(
        base + "/{id}/participants/{pid}",
        conversations.patch_participant(None),
        name="patch_participant",
    )
    WRAPUP_WRITE_ROUTES.add("patch_participant")
    r.add_get(
        base + "/{id}/participants/{pid}/wrapupcodes",
        conversations.participant_wrapup_codes,
        allow_head=False,
    )
    for array in WRITABLE_MEDIA_ARRAYS:
        r.add_get(
            f"{base}/{array}/{{id}}",
            conversations.get_media_conversation(array),
            allow_head=False,
        )
        patch_name, post_name = f"patch_{array}_participant", f"post_{array}_wrapup"
        r.add_patch(
            f"{base}/{array}/{{id}}/participants/{{pid}}",
            conversations.patch_participant(array),
            name=patch_name,
        )
        r.add_post(
            f"{base}/{array}/{{id}}/participants/{{pid}}/communications/{{commId}}/wrapup",
            conversations.post_communication_wrapup(array),
            name=post_name,
        )
        WRAPUP_WRITE_ROUTES.update((patch_name, post_name))


def setup_control(app: web.Application) -> None:
    r = app.router
    c = "/_emulator"
    r.add_post(c + "/reset", control.reset)
    r.add_get(c + "/org", control.org_summary, allow_head=False)
    r.add_post(c + "/queues", control_org.create_queue)
    r.add_patch(c + "/queues/{id}", control_org.rename_queue)
    r.add_get(c + "/channels", control.channels, allow_head=False)
    r.add_get(c + "/calls", control.calls, allow_head=False)
    r.add_get(c + "/tokens", control.tokens, allow_head=False)
    r.add_get(c + "/ground-truth", control.ground_truth, allow_head=False)
    r.add_post(c + "/conversations", control_traffic.start_conversation)
    r.add_get(c + "/conversations/{id}", control_traffic.get_conversation, allow_head=False)
    r.add_post(c + "/conversations/{id}/actions", control_traffic.conversation_action)
    r.add_post(c + "/traffic", control_traffic.start_traffic)
    r.add_get(c + "/traffic/{id}", control_traffic.traffic_progress, allow_head=False)
    r.add_post(c + "/faults", control_faults.add_faults)
    r.add_get(c + "/faults", control_faults.list_faults, allow_head=False)
    r.add_delete(c + "/faults", control_faults.clear_faults)
