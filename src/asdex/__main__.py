"""The command line: `python -m asdex demo` and `python -m asdex inspect MODULE:FUNCTION`.

Run `python -m asdex COMMAND --help` for each command's options.
"""

from __future__ import annotations

import argparse
import sys

from asdex._cli import _demo, _inspect
from asdex._cli._errors import CLIError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, run the command and return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m asdex",
        description="asdex: automatic sparse differentiation for JAX.")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _demo.add_parser(commands)
    _inspect.add_parser(commands)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except CLIError as error:
        print(f"asdex: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
