"""The error a user can fix by changing the configuration: printed as one line, exit code 2."""


class ConfigError(ValueError):
    """An invalid configuration, refused before anything is written; the message says what, where and why."""
