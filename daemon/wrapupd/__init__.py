"""wrapupd: applies each Genesys Cloud queue's default wrap-up code to agents left in ACW without one."""

__version__ = "0.1.0"
