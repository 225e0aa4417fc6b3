"""DEMO_API_KEY, DEMO_API_SECRET and DEMO_BALANCE: documented defaults, overrides, refusals."""

import pytest

from config.errors import ConfigError
from config.settings import settings_from_mapping


def test_demo_account_defaults_are_the_documented_pair_and_10000_usdt():
    settings = settings_from_mapping({})
    assert settings.demo_api_key.reveal() == "kryptelion-demo-key"
    assert settings.demo_api_secret.reveal() == "kryptelion-demo-secret"
    assert settings.demo_balance == 10_000.0
    assert "kryptelion-demo-secret" not in repr(settings)


def test_demo_account_settings_can_be_overridden():
    env = {"DEMO_API_KEY": "my_key-1", "DEMO_API_SECRET": "s3cr3t", "DEMO_BALANCE": "250.5"}
    settings = settings_from_mapping(env)
    assert settings.demo_api_key.reveal() == "my_key-1"
    assert settings.demo_api_secret.reveal() == "s3cr3t"
    assert settings.demo_balance == 250.5


@pytest.mark.parametrize(
    ("env", "key"),
    [
        ({"DEMO_API_KEY": "has space"}, "DEMO_API_KEY"),
        ({"DEMO_API_KEY": "x" * 65}, "DEMO_API_KEY"),
        ({"DEMO_BALANCE": "lots"}, "DEMO_BALANCE"),
        ({"DEMO_BALANCE": "0"}, "DEMO_BALANCE"),
        ({"DEMO_BALANCE": "nan"}, "DEMO_BALANCE"),
        ({"DEMO_BALANCE": "inf"}, "DEMO_BALANCE"),
    ],
)
def test_bad_demo_account_settings_name_their_key(env, key):
    with pytest.raises(ConfigError, match=f"^{key}:"):
        settings_from_mapping(env)
