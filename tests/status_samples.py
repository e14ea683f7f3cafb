"""Status reports as the service would build them, for the page, JSON and terminal tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from wrapupd.logs import channel_tag
from wrapupd.status_report import (
    ChannelStatus,
    Check,
    Problem,
    ProblemKind,
    QueueStatus,
    RateBudget,
    RecentOutcome,
    StatusReport,
)

NOW = datetime(2026, 3, 2, 14, 30, 0, tzinfo=UTC)
CHANNEL_ID = "streaming-0-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CONNECT_URI = f"wss://streaming.mypurecloud.com/channels/{CHANNEL_ID}"
HOSTILE_QUEUE = '<script>alert("q")</script> & Co'


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def sample_report(**changes: object) -> StatusReport:
    """A running daemon with two queues, one channel, a few outcomes; ``changes`` override fields."""
    report = StatusReport(
        generated_at=NOW,
        version="0.1.0",
        started_at=ago(3 * 3600 + 120),
        dry_run=False,
        checks=(
            Check("token", True, "expires 2026-03-03T14:00:00Z"),
            Check("socket", True, "connected"),
            Check("heartbeat", True, "last frame 4.0s ago"),
            Check("codes", True, "2 queues, verified"),
            Check("subscriptions", True, "all permitted"),
        ),
        channels=(
            ChannelStatus(
                tag=channel_tag(CHANNEL_ID),
                shard=0,
                topics=2,
                rejected_topics=0,
                connected=True,
                state="connected",
                connected_since=ago(3 * 3600),
                last_frame_at=ago(4),
                expires_at=NOW + timedelta(hours=20),
            ),
        ),
        budget=RateBudget(per_minute=270, used_last_minute=42, waiting=0, paused_for_s=0.0),
        queues=(
            QueueStatus("Support", "No code selected", 30, 3, 128, ago(12)),
            QueueStatus(HOSTILE_QUEUE, "Callback <b>", 0, 0, 7, ago(2 * 3600)),
            QueueStatus("Retention", "Retained", 15, 0, 0, None),
        ),
        recent=(
            RecentOutcome(ago(12), "Support", "c-0001", "applied"),
            RecentOutcome(ago(40), "Support", "c-0002", "already_coded", "agent chose a code"),
            RecentOutcome(ago(95), HOSTILE_QUEUE, "c-0003", "too_late", "ACW ended"),
        ),
        problems=(),
    )
    return replace(report, **changes)  # type: ignore[arg-type]


def troubled_report() -> StatusReport:
    """Not ready: the socket is down and there are problems to act on."""
    base = sample_report()
    return replace(
        base,
        checks=(*base.checks[:1], Check("socket", False, "disconnected"), *base.checks[2:]),
        channels=(replace(base.channels[0], connected=False, state="reconnecting"),),
        problems=(
            Problem(
                ProblemKind.CODE_NOT_ASSIGNED,
                "Retention",
                "'Retained' is not assigned to the queue",
            ),
            Problem(
                ProblemKind.MISSING_PERMISSIONS,
                "v2.routing.queues.q-1.conversations",
                "routing:queue:view",
            ),
        ),
    )


class FixedStatus:
    """A :class:`wrapupd.status_report.StatusSource` whose report a test can swap."""

    def __init__(self, report: StatusReport) -> None:
        self.report = report
        self.asked = 0

    async def status_report(self) -> StatusReport:
        self.asked += 1
        return self.report


def docs_report() -> StatusReport:
    """The report behind docs/img/status-page.png: a site at work, with one thing to fix."""
    base = sample_report()
    return replace(
        base,
        checks=(
            *base.checks[:3],
            Check("codes", True, "4 queues, verified; 1 dropped (code_not_assigned)"),
            base.checks[4],
        ),
        queues=(
            QueueStatus("Support", "No code selected", 30, 3, 128, ago(12)),
            QueueStatus("Sales", "No code selected", 30, 1, 64, ago(95)),
            QueueStatus("Billing", "Billing - other", 20, 0, 41, ago(400)),
            QueueStatus("Callbacks", "No answer", 0, 0, 7, ago(2 * 3600)),
        ),
        recent=(
            RecentOutcome(ago(12), "Support", "5b0c8e2a-41f7-4e4a-9d0b-2f6c1d9e7a31", "applied"),
            RecentOutcome(
                ago(40),
                "Sales",
                "0e7d4b19-8c2f-4a55-b1e3-7f9a6c2d4e80",
                "already_coded",
                "agent chose a code",
            ),
            RecentOutcome(ago(95), "Sales", "c3a1f6d2-5e84-4b07-a9c6-1d2e3f4a5b6c", "applied"),
            RecentOutcome(
                ago(400),
                "Billing",
                "9f2e8d7c-6b5a-4c3d-8e1f-0a9b8c7d6e5f",
                "too_late",
                "ACW ended before the grace period",
            ),
        ),
        problems=(
            Problem(
                ProblemKind.CODE_NOT_ASSIGNED,
                "Retention",
                "'Retained' is not one of the queue's wrap-up codes",
            ),
        ),
    )
