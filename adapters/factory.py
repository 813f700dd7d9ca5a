"""Build the configured venue adapter."""

from __future__ import annotations

from adapters.base import Venue
from kernel.daemon.config import Config, Secrets


def make_venue(cfg: Config, secrets: Secrets) -> Venue:
    """The adapter `venue.kind` names. Raises `ConfigError` for a venue it cannot build
    (a ccxt.pro exchange the adapter does not support, no symbols)."""
    if cfg.venue.kind == "sim":
        from adapters.sim.venue import SimVenue

        return SimVenue(cfg.venue.sim)
    if cfg.venue.kind == "sim-remote":
        from adapters.sim.remote import RemoteSimVenue

        return RemoteSimVenue(cfg.venue.url, api_key=secrets.api_key)
    from adapters.ccxtpro.venue import CcxtProVenue

    return CcxtProVenue(cfg.venue.ccxtpro, api_key=secrets.api_key, secret=secrets.api_secret)
