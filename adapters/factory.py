"""Build the configured venue adapter."""

from __future__ import annotations

from adapters.base import Venue
from kernel.daemon.config import Config, Secrets
from kernel.errors import ConfigError


def make_venue(cfg: Config, secrets: Secrets) -> Venue:
    if cfg.venue.kind == "sim":
        from adapters.sim.venue import SimVenue

        return SimVenue(cfg.venue.sim)
    if cfg.venue.kind == "sim-remote":
        from adapters.sim.remote import RemoteSimVenue

        return RemoteSimVenue(cfg.venue.url, api_key=secrets.api_key)
    raise ConfigError(
        f"venue.kind = {cfg.venue.kind!r}: the ccxt.pro adapter is not built yet;"
        " use venue.kind = \"sim\""
    )
