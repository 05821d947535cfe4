"""The one error type the command line turns into a one-line message."""


class EffnetError(ValueError):
    """Bad input: a malformed description, a wrong checkpoint, an unreadable image, a bad option."""
