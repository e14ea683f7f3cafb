"""The org definition: queues, codes, agents, users and roles, OAuth clients, loaded from TOML.

``--org NAME`` resolves to ``<repo>/config/orgs/NAME.toml`` by walking up from this package;
a path to a ``.toml`` file is used as is.
"""

from __future__ import annotations

import tomllib
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import ControlError

ACW_PROMPTS = (
    "MANDATORY",
    "OPTIONAL",
    "MANDATORY_TIMEOUT",
    "MANDATORY_FORCED_TIMEOUT",
    "AGENT_REQUESTED",
)
TIMED_PROMPTS = ("MANDATORY_TIMEOUT", "MANDATORY_FORCED_TIMEOUT")
SKIPPABLE_PROMPTS = ("OPTIONAL", "AGENT_REQUESTED")
# Event/conversation payloads use lowercase names for the same settings.
EVENT_PROMPT = {
    "MANDATORY": "mandatory",
    "OPTIONAL": "optional",
    "MANDATORY_TIMEOUT": "timeout",
    "MANDATORY_FORCED_TIMEOUT": "forcedTimeout",
    "AGENT_REQUESTED": "agentRequested",
}
ALL_PERMISSIONS = (
    "conversation:participant:wrapup",
    "conversation:communication:view",
    "routing:queue:view",
    "routing:wrapupCode:view",
    "analytics:conversationDetail:view",
)


@dataclass(frozen=True)
class WrapupCode:
    id: str
    name: str


@dataclass(frozen=True)
class Queue:
    id: str
    name: str
    wrapup_prompt: str
    timeout_ms: int | None
    code_ids: tuple[str, ...]

    @property
    def timed(self) -> bool:
        return self.wrapup_prompt in TIMED_PROMPTS


@dataclass(frozen=True)
class Agent:
    id: str
    name: str


@dataclass(frozen=True)
class User:
    """A user who can sign in (authorization-code grant); acts with its roles' permissions."""

    id: str
    name: str
    permissions: frozenset[str]
    email: str = ""


GRANTS = ("client_credentials", "authorization_code")


@dataclass(frozen=True)
class OAuthClient:
    id: str
    secret: str
    name: str
    permissions: frozenset[str]
    visible_queues: frozenset[str] | None = None  # None: sees every queue
    denied_topic_queues: frozenset[str] = frozenset()  # queues whose topic is rejected anyway
    grant: str = "client_credentials"
    redirect_uris: tuple[str, ...] = ()

    def can_see_queue(self, queue_id: str) -> bool:
        return self.visible_queues is None or queue_id in self.visible_queues

    def may_subscribe(self, queue_id: str) -> bool:
        return self.can_see_queue(queue_id) and queue_id not in self.denied_topic_queues


@dataclass
class OrgDefinition:
    name: str
    division_id: str
    division_name: str
    queues: dict[str, Queue] = field(default_factory=dict)
    codes: dict[str, WrapupCode] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)
    clients: dict[str, OAuthClient] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    main_client_id: str = ""
    login_user_id: str | None = None
    _sorted: list[Queue] | None = field(default=None, repr=False)
    _names: dict[str, Queue] | None = field(default=None, repr=False)

    @property
    def login_user(self) -> User | None:
        """The user a browser sign-in lands as (``login = true`` in the org file)."""
        return self.users.get(self.login_user_id or "")

    @property
    def main_client(self) -> OAuthClient:
        return self.clients[self.main_client_id]

    def queue(self, ref: str) -> Queue | None:
        """A queue by id or (case-insensitive) name."""
        if ref in self.queues:
            return self.queues[ref]
        return self._by_name().get(ref.lower())

    def queues_by_name(self) -> list[Queue]:
        """Every queue, sorted by name as the platform lists them (cached: queues never change)."""
        if self._sorted is None:
            self._sorted = sorted(self.queues.values(), key=lambda q: q.name.lower())
        return self._sorted

    def _by_name(self) -> dict[str, Queue]:
        if self._names is None:
            self._names = {}
            for q in self.queues.values():
                self._names.setdefault(q.name.lower(), q)
        return self._names

    def agent_or_user(self, ref: object) -> Agent | None:
        """Someone who can take a conversation: an agent, or a user (e.g. the login user)."""
        if not isinstance(ref, str):
            return None
        user = self.users.get(ref)
        return self.agents.get(ref) or (Agent(user.id, user.name) if user else None)

    def code_for_queue(self, queue: Queue, ref: str) -> WrapupCode | None:
        """A code assigned to ``queue`` by id or (case-insensitive) name."""
        codes = [self.codes[c] for c in queue.code_ids]
        return next((c for c in codes if ref == c.id or c.name.lower() == ref.lower()), None)

    def queue_codes(self, queue: Queue) -> list[WrapupCode]:
        return [self.codes[c] for c in queue.code_ids]


def with_extra_queues(org: OrgDefinition, count: int) -> OrgDefinition:
    """The org plus ``count`` generated MANDATORY queues ("Scale Queue 00001", …), each with the
    org's first two codes; ids are stable (uuid5 of the org and the number)."""
    if count <= 0:
        return org
    codes = tuple(list(org.codes)[:2])
    extra = {}
    for n in range(1, count + 1):
        queue_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"genesys-emulator/{org.name}/queue/{n}"))
        extra[queue_id] = Queue(queue_id, f"Scale Queue {n:05d}", "MANDATORY", None, codes)
    return replace(org, queues={**org.queues, **extra}, _sorted=None, _names=None)


def resolve_org_path(ref: str) -> Path:
    candidate = Path(ref)
    if candidate.suffix == ".toml":
        if candidate.is_file():
            return candidate
        raise ControlError(f"org file {ref} does not exist")
    for parent in Path(__file__).resolve().parents:
        path = parent / "config" / "orgs" / f"{ref}.toml"
        if path.is_file():
            return path
    raise ControlError(f"org {ref!r} not found under any config/orgs/ above the package")


def load_org(ref: str) -> OrgDefinition:
    path = resolve_org_path(ref)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ControlError(f"cannot read org file {path}: {exc}") from exc
    try:
        return _build_org(data, path.stem)
    except (KeyError, TypeError, ValueError) as exc:
        raise ControlError(f"invalid org file {path}: {exc!r}") from exc


def _build_org(data: dict[str, Any], default_name: str) -> OrgDefinition:
    org_table = data.get("org", {})
    org = OrgDefinition(
        name=org_table.get("name", default_name),
        division_id=org_table.get("division_id", str(uuid.uuid4())),
        division_name=org_table.get("division_name", "Home"),
    )
    for raw in data.get("codes", []):
        org.codes[raw["id"]] = WrapupCode(id=raw["id"], name=raw["name"])
    for raw in data.get("queues", []):
        queue = _build_queue(raw, org)
        org.queues[queue.id] = queue
    for raw in data.get("agents", []):
        org.agents[raw["id"]] = Agent(id=raw["id"], name=raw["name"])
    _add_users(data, org)
    for raw in data.get("clients", []):
        client = _build_client(raw, org)
        org.clients[client.id] = client
    if not org.clients or not org.agents or not org.queues:
        raise ValueError("an org needs at least one queue, one agent and one client")
    mains = [c["id"] for c in data.get("clients", []) if c.get("main")]
    org.main_client_id = mains[0] if mains else next(iter(org.clients))
    return org


def _build_queue(raw: dict[str, Any], org: OrgDefinition) -> Queue:
    prompt = raw.get("wrapup_prompt", "MANDATORY")
    if prompt not in ACW_PROMPTS:
        raise ValueError(f"queue {raw['name']}: wrapup_prompt must be one of {ACW_PROMPTS}")
    timeout_ms = raw.get("timeout_ms")
    if prompt in TIMED_PROMPTS and not timeout_ms:
        raise ValueError(f"queue {raw['name']}: {prompt} needs timeout_ms")
    codes = tuple(raw.get("codes", []))
    unknown = [c for c in codes if c not in org.codes]
    if unknown:
        raise ValueError(f"queue {raw['name']}: unknown code ids {unknown}")
    return Queue(raw["id"], raw["name"], prompt, int(timeout_ms) if timeout_ms else None, codes)


def _add_users(data: dict[str, Any], org: OrgDefinition) -> None:
    roles = {r["name"]: _permissions(r.get("permissions", [])) for r in data.get("roles", [])}
    for raw in data.get("users", []):
        unknown = [r for r in raw.get("roles", []) if r not in roles]
        if unknown:
            raise ValueError(f"user {raw['id']}: unknown roles {unknown}")
        granted = frozenset().union(*(roles[r] for r in raw.get("roles", [])))
        org.users[raw["id"]] = User(raw["id"], raw["name"], granted, raw.get("email", ""))
        if raw.get("login"):
            org.login_user_id = raw["id"]


def _permissions(listed: list[str]) -> frozenset[str]:
    return frozenset(ALL_PERMISSIONS if listed == ["*"] else listed)


def _build_client(raw: dict[str, Any], org: OrgDefinition) -> OAuthClient:
    permissions = _permissions(raw.get("permissions", ["*"]))
    grant = raw.get("grant", "client_credentials")
    if grant not in GRANTS:
        raise ValueError(f"client {raw['id']}: grant must be one of {GRANTS}")
    visible = raw.get("visible_queues")
    visible_ids = None
    if visible is not None:
        resolved = [org.queue(ref) for ref in visible]
        if None in resolved:
            raise ValueError(f"client {raw['id']}: unknown visible queue in {visible}")
        visible_ids = frozenset(q.id for q in resolved if q is not None)
    denied = [org.queue(ref) for ref in raw.get("denied_topic_queues", [])]
    if None in denied:
        raise ValueError(f"client {raw['id']}: unknown queue in denied_topic_queues")
    return OAuthClient(
        id=raw["id"],
        secret=raw["secret"],
        name=raw.get("name", raw["id"]),
        permissions=permissions,
        visible_queues=visible_ids,
        denied_topic_queues=frozenset(q.id for q in denied if q is not None),
        grant=grant,
        redirect_uris=tuple(raw.get("redirect_uris", [])),
    )
