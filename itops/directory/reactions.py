"""Receivers for other domains' signals, connected by the app factory.

Kept free of heavy imports: the directory services (and ldap3 with them) load on the first reaction,
not in every web worker at start.
"""
from __future__ import annotations


def on_asset_checked_in(asset, **details) -> None:
    """A leaver's last asset back resolves their return ticket."""
    from itops.directory import services

    services.resolve_return_ticket_when_all_back(asset, **details)
