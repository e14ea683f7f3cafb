"""Fixtures the unit tests share."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import structlog

from wrapupd import logs
from wrapupd.logs import Redactor


@pytest.fixture
def clean_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with a fresh redactor and leaves no handler or config behind."""
    monkeypatch.setattr(logs, "_redactor", Redactor())
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logs._WrapupdHandler):
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    logging.captureWarnings(False)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
