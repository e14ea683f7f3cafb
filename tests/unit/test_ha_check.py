"""``wrapupd check``'s deployment rows: the ledger answers with a schema it understands, and the
channels the queues need fit the OAuth client's 20, with a warning before they stop fitting."""

from __future__ import annotations

from pathlib import Path

from ledger_places import Place
from wrapupd.commands.ha_check import channel_budget, ledger_status
from wrapupd.ledger import SCHEMA_VERSION
from wrapupd.options import DaemonOptions, local_options


def options(tmp_path: Path, **changes: object) -> DaemonOptions:
    return local_options(
        api_host="http://127.0.0.1:1",
        client_id="c",
        client_secret="s",
        policies=(),
        state_dir=tmp_path,
        **changes,
    )


def test_a_reachable_postgresql_ledger_is_ok_with_its_schema_version(
    postgres_place: Place, tmp_path: Path
) -> None:
    where, status = ledger_status(
        options(
            tmp_path,
            ledger_url=str(postgres_place.location),
            ledger_password=postgres_place.password,
        )
    )
    assert status == f"ok: schema version {SCHEMA_VERSION}"
    assert postgres_place.password not in where + status


def test_a_wrong_password_is_a_problem_that_never_shows_the_password(
    postgres_place: Place, tmp_path: Path
) -> None:
    wrong = "not-the-password-9f2c"
    _, status = ledger_status(
        options(tmp_path, ledger_url=str(postgres_place.location), ledger_password=wrong)
    )
    assert status.startswith("problem:")
    assert wrong not in status


def test_without_a_ledger_file_yet_sqlite_is_created_at_start(tmp_path: Path) -> None:
    where, status = ledger_status(options(tmp_path))
    assert where.startswith(str(tmp_path))
    assert status.startswith("ok")


def test_channels_fit_warn_near_the_limit_and_fail_past_it() -> None:
    assert channel_budget(900, shared=True)[0].startswith("ok: 1 per replica x 2")
    status, fits = channel_budget(6_000, shared=True)  # 12 steady, 24 during a rollover
    assert fits and status.startswith("warning:")
    status, fits = channel_budget(11_000, shared=True)  # 22: the platform would evict
    assert not fits and status.startswith("problem:")
    assert channel_budget(11_000, shared=False)[1]  # one replica: 11 channels fit
