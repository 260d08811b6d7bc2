"""The errors minibert raises: one base class, one subclass per kind of problem.

Each message names the thing at fault (file, tensor, field, argument), what was expected, what was
found, and what to do about it. They subclass ValueError so that code catching ValueError keeps working.
"""


class MinibertError(ValueError):
    """Base class of every error minibert raises on purpose.

    `fix` is what a Python caller can do, and ends the message. Where the command line has another way (a flag,
    another command), `cli_fix` says it, and the `minibert` command prints `for_command_line()` instead.
    """

    def __init__(self, message: str, *, fix: str | None = None, cli_fix: str | None = None):
        self.message, self.fix, self.cli_fix = message, fix, cli_fix
        super().__init__(message if fix is None else f"{message} {fix}")

    def for_command_line(self) -> str:
        """The message with the command line's fix, where it has its own."""
        return str(self) if self.cli_fix is None else f"{self.message} {self.cli_fix}"

    def __reduce__(self):  # so that the fields survive pickling (a Dask worker's error reaches the client so)
        return _rebuild, (type(self), self.message, self.fix, self.cli_fix)


def _rebuild(cls, message, fix, cli_fix):
    return cls(message, fix=fix, cli_fix=cli_fix)


class ConfigError(MinibertError):
    """config.json is missing, malformed, or asks for something minibert does not implement."""


class CheckpointError(MinibertError):
    """A weights file is missing, corrupt, or does not match its config."""


class InputError(MinibertError):
    """An argument of a public call has the wrong type, shape, dtype or range."""
