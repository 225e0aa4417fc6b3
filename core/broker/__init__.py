"""Brokers: one protocol for paper, testnet and live execution."""
