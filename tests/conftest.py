"""Shared fixtures: settings, databases (SQLite, PostgreSQL when available), demo exchange."""

from __future__ import annotations

import pytest

from config.settings import Settings, settings_from_mapping


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Offline demo settings whose data folder and SQLite file live in a per-test temporary dir."""
    return settings_from_mapping({"DATA_DIR": str(tmp_path)})
