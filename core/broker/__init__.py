"""Brokers trade a bot's decisions: `paper` (the backtester's model, locally) or an exchange."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    """What a bot asks its broker at a candle's close: the target and its stop distances."""

    target: float
    stop_distance: float | None = None  # absolute; a fraction is the broker's own setting
    take_distance: float | None = None
    funding_rate: float = 0.0
