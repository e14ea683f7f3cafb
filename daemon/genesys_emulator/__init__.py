"""A faithful local Genesys Cloud CX org: REST, OAuth and notification WebSockets on one port.

Layout after moto: ``routes`` -> thin ``handlers`` -> the state-and-rules model (``org``,
``conversation``, ``channels``, ``auth``, ``limits``) -> service-shaped ``errors``; plus a separate
control plane (``control``) for tests and demos. Imports nothing from ``wrapupd``.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
