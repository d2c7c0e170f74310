"""The one project exception: a user-facing error with a message a user can act on."""


class GatysError(ValueError):
    """Bad input or a missing resource; the CLI prints it on one line and exits with status 2."""
