"""One module per ``wrapupd`` command; each takes its arguments and returns a process exit code.

Exit codes follow sysexits so systemd can tell a bad config (78: do not restart) from an
unreachable platform (69: try again later); ``wrapupd apply`` adds one code per outcome.
"""

EX_OK = 0
EX_FAILURE = 1
EX_UNAVAILABLE = 69
EX_CONFIG = 78
