"""The one exception type users see: a one-line message naming the file, field or tensor at fault."""


class WarmError(Exception):
    """A user-facing error. The CLI prints its message on one line and exits with status 2."""
