from e2e_harness import start_daemon

__all__ = ["start_daemon"]
