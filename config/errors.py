"""The root of Kryptelion's exception tree, kept in `config` because it sits below every package."""


class KryptelionError(Exception):
    """Base of every error Kryptelion raises on purpose; anything else is a bug."""


class ConfigError(KryptelionError):
    """A setting is missing or invalid; the message is one line naming the key."""
