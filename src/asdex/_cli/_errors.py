"""The one error the command line reports as a short message instead of a traceback."""


class CLIError(Exception):
    """Bad input or a failure the user can fix: printed as one message, exit status 1.

    Examples:
        >>> from asdex._cli._errors import CLIError
        >>> str(CLIError("cannot parse 'float32[a]'"))
        "cannot parse 'float32[a]'"
    """
