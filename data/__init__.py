"""Candle data: downloads (updater), archive imports (vision) and exports (exporter)."""
