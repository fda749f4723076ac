"""Expected failures of host tools: one clear line and an exit code."""


class RvmToolError(Exception):
    """An expected failure (bad port, bad key, tampered log, ...).

    The CLI prints `rvm: <message>` and exits with `code`; tracebacks are
    for bugs only."""

    def __init__(self, message, code=2):
        super().__init__(message)
        self.code = code
