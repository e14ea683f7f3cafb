"""The Genesys Cloud regions (API domains) a `region` setting may name; `api_host` reaches others."""

from __future__ import annotations

KNOWN_REGIONS: tuple[str, ...] = (
    "mypurecloud.com",
    "mypurecloud.ie",
    "mypurecloud.de",
    "mypurecloud.com.au",
    "mypurecloud.jp",
    "usw2.pure.cloud",
    "cac1.pure.cloud",
    "euw2.pure.cloud",
    "aps1.pure.cloud",
    "apne2.pure.cloud",
    "sae1.pure.cloud",
    "mec1.pure.cloud",
    "euc2.pure.cloud",
    "use2.us-gov-pure.cloud",
)
