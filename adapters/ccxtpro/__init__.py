"""Real venues through ccxt.pro; Binance USD-M is the reference (docs/venues.md)."""
