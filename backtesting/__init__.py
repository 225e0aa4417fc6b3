"""The backtesting engine (simulador.py) and its metrics (metricas.py)."""
