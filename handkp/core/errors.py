"""The one base class of the errors this package raises on purpose.

Every ``*Error`` of handkp derives from ``HandkpError``; its message names the file, the setting
or the remote step and what is wrong with it, so a stage or the app catches ``HandkpError``,
prints the message and exits non-zero without a traceback."""


class HandkpError(RuntimeError):
    """A problem handkp can explain: bad input, a missing file, an unreachable device."""


class ModelLoadError(HandkpError):
    """A model file that cannot be read, or cannot run on this backend or machine."""
