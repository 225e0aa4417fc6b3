"""Trading strategies: one interface (base.py), a registry (factory.py), the strategies."""
