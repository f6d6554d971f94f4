"""The one exception type the CLI turns into a one-line message and a non-zero exit."""


class HsgprofError(ValueError):
    """Bad input or an impossible request; its message names the bad value and what is accepted."""
