"""Names `vulture daemon/` cannot see used, each with who uses it.

`make lint` runs ``vulture daemon/ vulture_whitelist.py``. Everything else production does not use
is deleted, not listed here. Sections 1-3 are names a framework, the interpreter or a library
reads or calls by name. Section 4 is the one test seam the daemon ships. Section 5 lists what the
other areas' own work removes or decides (remove each line when it lands).
"""
# ruff: noqa: B018  (a whitelist is a list of bare names)

from typing import Any

_: Any = None

# --- 1. pydantic / pydantic-settings: they read these by name --------------------------------
_.model_config  # settings/sections.py, settings/schema.py: the models' configuration
_._known_region  # settings/sections.py: @field_validator, called by pydantic
_._valid_api_host  # settings/sections.py: @field_validator
_._secret_not_blank  # settings/sections.py: @field_validator
_._one_host_and_a_budget  # settings/sections.py: @model_validator
_._host_and_port  # settings/sections.py: @field_validator
_._lowercase  # settings/sections.py: @field_validator
_._each_queue_once  # settings/schema.py: @field_validator
_.client_secret_file  # settings/sections.py: a field pydantic validates (the sources read its value raw)
_.settings_customise_sources  # settings/schema.py: pydantic-settings' hook for the sources
_.env_settings  # settings/schema.py: keyword parameters pydantic-settings passes to that hook
_.dotenv_settings
_.file_secret_settings
_.get_field_value  # settings/sources.py: PydanticBaseSettingsSource's abstract method
_._load_env_vars  # settings/sources.py: EnvSettingsSource's hook for where variables come from

# --- 2. the interpreter and the standard library ---------------------------------------------
_.__getattr__  # genesys/__init__.py: module __getattr__ (PEP 562), the lazy SDK import
_.exc_type  # ledger.py: the context-manager protocol's __exit__ parameters
_.tb
_.row_factory  # ledger.py: sqlite3 reads it on the connection
_.disabled  # logs.py: logging reads Logger.disabled
_.DONE  # events.py: ItemState read back from the ledger by value, ItemState(row["state"])

# --- 3. the Genesys SDK (PureCloudPlatformClientV2) reads these on objects we hand it ----------
_.getheaders  # genesys/http.py: the SDK's RESTResponse interface on our response
_.getheader
_.trace  # genesys/http.py: _QuietSdkLogger.trace, which the SDK's ApiClient calls after every request
_.gateway_configuration  # genesys/client.py, genesys/http.py: SDK Configuration attributes we pin
_.user_agent
_.live_reload_config
_.config_file_path
_.should_refresh_access_token
_.proxy
_.verify_ssl
_.log_request_body
_.log_response_body
_.log_file_path
_.log_to_console

_.create_module  # genesys/sdk.py: importlib's Loader protocol, called by the import system
_.callbacks  # genesys/convert.py: msgspec struct fields for the media arrays, read by name (getattr)
_.chats
_.emails
_.messages
_.social_expressions
_.videos
_.cobrowsesessions
_.screenshares
_._loopback_redirect  # settings/sections.py: @field_validator

_.traffic  # genesys_emulator/testing.py: the in-process emulator's API for integrators' own tests
_.running_emulator

_._one_way_to_pick_queues  # settings/sections.py: @model_validator
_._postgres_url  # settings/sections.py: @field_validator
_._heartbeat_within_lease  # settings/sections.py: @model_validator
_.password_file  # settings/sections.py: a field pydantic validates (the sources read its value raw)
_.applied_at  # ledger/model.py ExportRecord: an export column, written by name (EXPORT_COLUMNS)
_.last_seen  # ledger/model.py Replica: a column of the replicas table, filled by rows.py

# --- 4. the daemon's test seam ---------------------------------------------------------------
_.ManualClock  # clock.py: the Clock the tests inject; every wait of the daemon goes through a Clock
_.advance  # clock.py: how a test moves that clock
_.raced  # groundtruth/score.py Score: read by the fault matrix's table (tests/faults/faults_harness.row)
