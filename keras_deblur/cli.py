"""What every command-line tool does with an error it expects: one line and exit code 2.

    @reports_errors(OSError, ValueError)
    def main(argv):
        ...

The commands' exit codes: 0 done; 1 done, but some inputs were skipped (named
on stderr); 2 nothing done (a bad flag value, a missing file, ...); the
decorated function's own return value otherwise.
"""

import functools
import re
import sys

# Nothing was done: the error line on stderr says why.
EXIT_ERROR = 2


def first_line(error):
    """The gist of `error` for a one-line message: its first line, without
    TensorFlow's function-node and op tags, at most 300 characters, or the
    error's type name where it has no text."""
    text = str(getattr(error, "message", None) or error).strip().splitlines()
    if not text:
        return type(error).__name__
    return re.sub(r"^\{\{[^}]*\}\}\s*|\s*\[Op:\w+\]$", "", text[0])[:300]


def reports_errors(*error_types):
    """Decorator: the listed errors become `error: <message>` lines on stderr and `EXIT_ERROR`.

    Made for a CLI's absl `main` (whose return value `app.run` passes to
    `sys.exit`) or the function it delegates to. Any other exception,
    `app.UsageError` included, passes through unchanged.

    Args:
        *error_types: exception classes. Their messages must name the file or
            flag concerned (the project's error convention), one line each. An
            error with a `problems` list (e.g. `EvaluationInputError`) prints
            one line per problem.

    Returns:
        The decorator; the wrapped function returns `EXIT_ERROR` where it
        would have raised one of `error_types`.
    """

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            try:
                return function(*args, **kwargs)
            except error_types as error:
                for problem in getattr(error, "problems", None) or [error]:
                    print(f"error: {problem}", file=sys.stderr)
                return EXIT_ERROR

        return wrapper

    return decorate
