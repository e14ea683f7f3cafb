from e2e_harness import start_daemon

from secret_guard import issued_secrets, pytest_runtest_makereport

__all__ = ["issued_secrets", "pytest_runtest_makereport", "start_daemon"]
