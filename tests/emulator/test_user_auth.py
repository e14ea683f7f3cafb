"""The authorization-code grant (with and without PKCE), refresh tokens, and user tokens acting as users.

Driven through the official SDK's own methods (`ApiClient.get_code_authorization_token`,
`get_pkce_token`, `refresh_code_authorization_token`) wherever the SDK has one, so the emulator
answers exactly the requests the SDK sends.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from PureCloudPlatformClientV2 import ConversationsApi, RoutingApi, UsersApi
from PureCloudPlatformClientV2.api_client import ApiClient
from PureCloudPlatformClientV2.rest import ApiException
from sdk_schema import assert_conforms
from test_conversations import codes_of, in_acw, patch

from emulator_client import RawClient
from genesys_emulator.testing import RunningEmulator

LOGIN_CLIENT, LOGIN_SECRET = "wrapupd-login", "login-secret-do-not-use-in-production"
REDIRECT = "http://127.0.0.1:8765/callback"
LOGIN_USER_NAME = "wrapupd Integration"
NO_SUCH_CONVERSATION = "0b5e9a7c-6d1f-4c2e-9a3b-7f8e1d2c3b4a"
USER_CONTEXT = "This request requires a user context."


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def authorize(emulator: RunningEmulator, **params: str) -> tuple[int, dict[str, str], str]:
    """GET /oauth/authorize without following the redirect: status, Location query, body."""
    query = {
        "response_type": "code",
        "client_id": LOGIN_CLIENT,
        "redirect_uri": REDIRECT,
        "state": "st-1",
        **params,
    }
    url = f"{emulator.base_url}/oauth/authorize?{urllib.parse.urlencode(query)}"
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, {}, response.read().decode()
    except urllib.error.HTTPError as error:
        location = error.headers.get("Location") or ""
        parsed = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))
        if error.code == 302:
            assert location.startswith(query["redirect_uri"])
        return error.code, parsed, error.read().decode()


def code_for(emulator: RunningEmulator, **params: str) -> str:
    status, query, _ = authorize(emulator, **params)
    assert status == 302 and "code" in query, query
    assert query.get("state") == params.get("state", "st-1")
    return query["code"]


def token_form(emulator: RunningEmulator, form: dict[str, str], basic: bool = True) -> Any:
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if basic:
        secret = base64.b64encode(f"{LOGIN_CLIENT}:{LOGIN_SECRET}".encode()).decode()
        headers["Authorization"] = f"Basic {secret}"
    data = urllib.parse.urlencode(form).encode()
    return RawClient(emulator.base_url).request("POST", "/oauth/token", data, headers)


def user_api(emulator: RunningEmulator) -> ApiClient:
    """An SDK client holding a user token from the confidential code grant."""
    api = ApiClient(host=emulator.base_url)
    api.get_code_authorization_token(LOGIN_CLIENT, LOGIN_SECRET, code_for(emulator), REDIRECT)
    return api


def pkce_pair(api: ApiClient) -> tuple[str, str]:
    verifier = api.generate_pkce_code_verifier(64)
    return verifier, api.compute_pkce_code_challenge(verifier)


# --- the SDK's own methods --------------------------------------------------------------------


def test_sdk_code_authorization_token_then_users_me(emulator: RunningEmulator) -> None:
    api = ApiClient(host=emulator.base_url)
    _, data = api.get_code_authorization_token(
        LOGIN_CLIENT, LOGIN_SECRET, code_for(emulator), REDIRECT
    )
    assert set(data) == {"access_token", "refresh_token", "expires_in", "token_type"}
    assert data["token_type"] == "bearer" and data["expires_in"] >= 1
    assert api.refresh_token == data["refresh_token"]
    me = UsersApi(api).get_users_me()
    assert me.name == LOGIN_USER_NAME
    assert_conforms(json.loads(api.last_response.data), "UserMe")


def test_sdk_pkce_token(emulator: RunningEmulator) -> None:
    api = ApiClient(host=emulator.base_url)
    verifier, challenge = pkce_pair(api)
    code = code_for(emulator, code_challenge=challenge, code_challenge_method="S256")
    _, data = api.get_pkce_token(LOGIN_CLIENT, verifier, code, REDIRECT)
    assert data["access_token"] and data["refresh_token"]
    assert UsersApi(api).get_users_me().name == LOGIN_USER_NAME


def test_sdk_refresh_rotates_the_refresh_token(emulator: RunningEmulator) -> None:
    api = user_api(emulator)
    first = api.refresh_token
    _, data = api.refresh_code_authorization_token(LOGIN_CLIENT, LOGIN_SECRET, first)
    assert data["refresh_token"] != first and api.access_token == data["access_token"]
    assert UsersApi(api).get_users_me().name == LOGIN_USER_NAME
    reply = token_form(emulator, {"grant_type": "refresh_token", "refresh_token": first})
    assert (reply.status, reply.body["error"]) == (400, "invalid_grant")


def test_keep_refresh_tokens_returns_the_same_one(emulator: RunningEmulator) -> None:
    emulator.reset(keep_refresh_tokens=True)
    api = user_api(emulator)
    first = api.refresh_token
    for _ in range(2):
        _, data = api.refresh_code_authorization_token(LOGIN_CLIENT, LOGIN_SECRET, first)
        assert data["refresh_token"] == first


@pytest.mark.parametrize("fault", ["expire_refresh_tokens", "revoke_refresh_tokens"])
def test_expired_or_revoked_refresh_token_is_invalid_grant(
    emulator: RunningEmulator, fault: str
) -> None:
    api = user_api(emulator)
    emulator.fault(kind=fault)
    reply = token_form(
        emulator, {"grant_type": "refresh_token", "refresh_token": api.refresh_token}
    )
    assert reply.status == 400 and reply.body["error"] == "invalid_grant"
    assert UsersApi(api).get_users_me().name == LOGIN_USER_NAME  # the access token still works


def test_refresh_token_lifetime_option(emulator: RunningEmulator, wait: Any) -> None:
    emulator.reset(refresh_token_lifetime_s=0.3)
    refresh = user_api(emulator).refresh_token

    def refused() -> bool:
        form = {"grant_type": "refresh_token", "refresh_token": refresh}
        return token_form(emulator, form).status == 400

    wait(refused)


# --- the daemon's form: Basic client auth plus PKCE --------------------------------------------


def test_basic_auth_with_code_verifier(emulator: RunningEmulator) -> None:
    verifier, challenge = pkce_pair(ApiClient(host=emulator.base_url))
    code = code_for(emulator, code_challenge=challenge, code_challenge_method="S256")
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
    }
    reply = token_form(emulator, form)
    assert reply.status == 200 and reply.body["refresh_token"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_verifier": "x" * 64}, "invalid_grant"),
        ({"code_verifier": None}, "invalid_grant"),
        ({"redirect_uri": "http://127.0.0.1:9999/other"}, "invalid_grant"),
        ({"code": "not-a-code"}, "invalid_grant"),
    ],
)
def test_a_bad_exchange_is_refused(
    emulator: RunningEmulator, change: dict[str, str | None], error: str
) -> None:
    verifier, challenge = pkce_pair(ApiClient(host=emulator.base_url))
    code = code_for(emulator, code_challenge=challenge, code_challenge_method="S256")
    form: dict[str, str | None] = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "code_verifier": verifier,
        **change,
    }
    reply = token_form(emulator, {k: v for k, v in form.items() if v is not None})
    assert (reply.status, reply.body["error"]) == (400, error)


def test_a_code_is_single_use(emulator: RunningEmulator) -> None:
    code = code_for(emulator)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
    assert token_form(emulator, form).status == 200
    assert token_form(emulator, form).body["error"] == "invalid_grant"


def test_a_public_exchange_needs_pkce(emulator: RunningEmulator) -> None:
    form = {
        "grant_type": "authorization_code",
        "code": code_for(emulator),
        "redirect_uri": REDIRECT,
        "client_id": LOGIN_CLIENT,
    }
    reply = token_form(emulator, form, basic=False)
    assert (reply.status, reply.body["error"]) == (401, "invalid_client")


def test_grants_belong_to_their_clients(emulator: RunningEmulator, raw: RawClient) -> None:
    login_cc = base64.b64encode(f"{LOGIN_CLIENT}:{LOGIN_SECRET}".encode()).decode()
    headers = {
        "Authorization": f"Basic {login_cc}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    reply = raw.request("POST", "/oauth/token", b"grant_type=client_credentials", headers)
    assert (reply.status, reply.body["error"]) == (400, "unauthorized_client")
    status, _, _ = authorize(emulator, client_id=emulator.client_id)
    assert status == 400  # a client-credentials client has no browser step


# --- the browser step's refusals ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": "abc", "code_challenge_method": "plain"}, "invalid_request"),
    ],
)
def test_authorize_errors_redirect_with_error_and_state(
    emulator: RunningEmulator, params: dict[str, str], error: str
) -> None:
    status, query, _ = authorize(emulator, **params)
    assert status == 302 and query["error"] == error and query["state"] == "st-1"


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "nobody"},
        {"redirect_uri": "https://evil.example.com/cb"},
        {"redirect_uri": ""},
    ],
)
def test_authorize_refuses_without_redirecting(
    emulator: RunningEmulator, params: dict[str, str]
) -> None:
    status, query, body = authorize(emulator, **params)
    assert status == 400 and query == {} and body


def test_any_loopback_port_is_accepted(emulator: RunningEmulator) -> None:
    code_for(emulator, redirect_uri="http://127.0.0.1:40123/callback")


# --- user tokens act as the user --------------------------------------------------------------


def test_users_me_refuses_client_credentials(emulator: RunningEmulator, sdk: Any) -> None:
    with pytest.raises(ApiException) as raised:
        UsersApi(sdk).get_users_me()
    body = json.loads(raised.value.body)
    assert raised.value.status == 400 and body["message"].startswith(USER_CONTEXT)
    assert_conforms(body, "ErrorBody")


def test_a_user_token_has_the_users_role_permissions(emulator: RunningEmulator) -> None:
    emulator.reset(login_user="Read-only Supervisor")
    api = user_api(emulator)
    assert RoutingApi(api).get_routing_queues().entities  # routing:queue:view via the role
    with pytest.raises(ApiException) as raised:
        ConversationsApi(api).patch_conversation_participant(NO_SUCH_CONVERSATION, "p", {})
    assert raised.value.status == 403 and "conversation:participant:wrapup" in raised.value.body


@pytest.mark.parametrize("status", [400, 403])
def test_require_user_context_refuses_client_credentials_writes_only(
    emulator: RunningEmulator, raw: RawClient, wait: Any, status: int
) -> None:
    emulator.reset(require_user_context=True, user_context_status=status)
    cc = raw.bearer(emulator.client_id, emulator.client_secret)
    user = user_api(emulator).access_token
    started = in_acw(emulator, wait)
    body = {"wrapup": {"code": codes_of(emulator, "Support")["Resolved"]}}
    refused = patch(raw, cc, started, body)
    assert (refused.status, refused.body["message"][: len(USER_CONTEXT)]) == (status, USER_CONTEXT)
    assert patch(raw, user, started, body).status == 202
    assert raw.call("GET", f"/api/v2/conversations/{started['conversationId']}", cc).status == 200


@pytest.mark.parametrize("require", [True, False])
def test_a_probe_write_on_a_missing_conversation_tells_the_grants_apart(
    emulator: RunningEmulator, raw: RawClient, require: bool
) -> None:
    """What `wrapupd check` relies on: 404 for a grant that may write, the refusal otherwise."""
    emulator.reset(require_user_context=require)
    cc = raw.bearer(emulator.client_id, emulator.client_secret)
    user = user_api(emulator).access_token
    probe = {"conversationId": NO_SUCH_CONVERSATION, "participantId": NO_SUCH_CONVERSATION}
    body = {"wrapup": {"code": NO_SUCH_CONVERSATION}}
    assert patch(raw, user, probe, body).status == 404
    answer = patch(raw, cc, probe, body)
    if require:
        assert answer.status == 400 and answer.body["message"].startswith(USER_CONTEXT)
    else:
        assert answer.status == 404


def test_own_participant_only(emulator: RunningEmulator, raw: RawClient, wait: Any) -> None:
    emulator.reset(wrapup_own_participant_only=True)
    user_id = emulator.control("GET", "/_emulator/org")["loginUserId"]
    token = user_api(emulator).access_token
    body = {"wrapup": {"code": codes_of(emulator, "Support")["Resolved"]}}
    someone_else = in_acw(emulator, wait)
    refused = patch(raw, token, someone_else, body)
    assert (refused.status, refused.body["code"]) == (403, "not.authorized")
    own = in_acw(emulator, wait, agent=user_id)
    assert patch(raw, token, own, body).status == 202
    cc = raw.bearer(emulator.client_id, emulator.client_secret)
    assert patch(raw, cc, someone_else, body).status == 202  # the option binds user tokens only


def test_user_channels_are_separate_from_the_apps(
    emulator: RunningEmulator, raw: RawClient, main_token: str
) -> None:
    user = user_api(emulator).access_token
    channel = raw.call("POST", "/api/v2/notifications/channels", user).body
    assert raw.call("HEAD", f"/api/v2/notifications/channels/{channel['id']}", user).status == 200
    head = raw.call("HEAD", f"/api/v2/notifications/channels/{channel['id']}", main_token)
    assert head.status == 404


def test_issued_tokens_are_listed_for_leak_checks(emulator: RunningEmulator) -> None:
    api = user_api(emulator)
    listing = emulator.control("GET", "/_emulator/tokens")
    assert api.access_token in {t["value"] for t in listing["tokens"]}
    assert api.refresh_token in {t["value"] for t in listing["refreshTokens"]}


@pytest.mark.parametrize(("status", "code"), [(400, "bad.request"), (403, "not.authorized")])
def test_the_user_context_fault_body_follows_the_fault_status(
    emulator: RunningEmulator, raw: RawClient, main_token: str, status: int, code: str
) -> None:
    emulator.fault(
        kind="http", method="GET", path="/api/v2/users/me", status=status, body="user_context"
    )
    reply = raw.call("GET", "/api/v2/users/me", main_token)
    assert (reply.status, reply.body["code"], reply.body["status"]) == (status, code, status)
    assert reply.body["message"].startswith(USER_CONTEXT)
