"""Kryptelion core: domain types, order state machine, storage and exchange adapters."""
