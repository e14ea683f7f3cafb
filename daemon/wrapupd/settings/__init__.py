"""The settings: the file's schema, where values come from, and errors a tired operator can act on.

Sources, later wins:

1. the TOML file (``load_settings(config_file)``, else ``$WRAPUPD_CONFIG``),
2. environment variables ``WRAPUPD_*``, nested with ``__`` (``WRAPUPD_GENESYS__CLIENT_ID``;
   lists as JSON: ``WRAPUPD_QUEUES='[{"queue": "Support", "default_code": "General"}]'``),
3. the client secret from a file: ``genesys.client_secret_file`` /
   ``WRAPUPD_GENESYS__CLIENT_SECRET_FILE``, else ``$CREDENTIALS_DIRECTORY/client_secret``
   (systemd ``LoadCredential=client_secret:…``).

The file's shape is a public contract (``config/wrapupd.example.toml`` documents every key and a
test checks it against :func:`settings_reference`). Unknown keys are errors everywhere: a typo must
not silently fall back to a default. Every problem becomes one line of a :class:`ConfigError`,
naming the setting path, the value given and what is allowed; the client secret is never shown.

Only the CLI and the commands import this package: it produces the daemon's plain options
(:meth:`Settings.daemon_options`), and the parts never see a setting.

- :mod:`~wrapupd.settings.sections`: the tables (``[genesys]``, ``[[queues]]``, ...)
- :mod:`~wrapupd.settings.schema`: the whole file, the policies and options it produces
- :mod:`~wrapupd.settings.sources`: the TOML file, the environment, the secret file
- :mod:`~wrapupd.settings.loading`: :func:`load_settings` and the problem report
- :mod:`~wrapupd.settings.reference`: the generated reference of docs/CONFIGURATION.md
"""

from wrapupd.events import QueuePolicy
from wrapupd.settings.loading import load_settings
from wrapupd.settings.reference import (
    REFERENCE_BEGIN,
    REFERENCE_END,
    reference_markdown,
    rewrite_reference,
    settings_reference,
)
from wrapupd.settings.regions import KNOWN_REGIONS
from wrapupd.settings.schema import Settings
from wrapupd.settings.sections import (
    ENV_CONFIG_FILE,
    ENV_PREFIX,
    DaemonSettings,
    DefaultsSettings,
    GenesysSettings,
    HttpSettings,
    LogSettings,
    QueueSettings,
)

__all__ = [
    "ENV_CONFIG_FILE",
    "ENV_PREFIX",
    "KNOWN_REGIONS",
    "REFERENCE_BEGIN",
    "REFERENCE_END",
    "DaemonSettings",
    "DefaultsSettings",
    "GenesysSettings",
    "HttpSettings",
    "LogSettings",
    "QueuePolicy",
    "QueueSettings",
    "Settings",
    "load_settings",
    "reference_markdown",
    "rewrite_reference",
    "settings_reference",
]
