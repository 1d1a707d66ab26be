"""The one exception type that means "the user gave us something we cannot use"."""


class UsageError(ValueError):
    """Bad input (an argument, a file, a checkpoint): the CLI prints its message as one line and exits non-zero.

    Raise it with a message that names what is wrong and the offending value, e.g.
    ``UsageError("--model.lr must be > 0, got -1.0")``. Any other exception is a bug and keeps its traceback.
    """
