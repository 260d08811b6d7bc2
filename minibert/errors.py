"""The errors minibert raises: one base class, one subclass per kind of problem.

Each message names the thing at fault (file, tensor, field, argument), what was expected, what was
found, and what to do about it. They subclass ValueError so that code catching ValueError keeps working.
"""


class MinibertError(ValueError):
    """Base class of every error minibert raises on purpose."""


class ConfigError(MinibertError):
    """config.json is missing, malformed, or asks for something minibert does not implement."""


class CheckpointError(MinibertError):
    """A weights file is missing, corrupt, or does not match its config."""


class InputError(MinibertError):
    """An argument of a public call has the wrong type, shape, dtype or range."""
