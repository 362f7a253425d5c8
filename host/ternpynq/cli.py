"""The `ternpynq` command line.

Each stage owns its subcommands in a module that exposes ``register(subparsers)``; this file
only lists those modules, so adding a command never means editing another stage's code.
Every command reports an expected failure (bad file, bad image, missing data) as one line on
stderr and exit status 2 (argparse's own usage errors) or 1 (everything else), never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

# Modules that add subcommands; a module whose optional dependency is missing is skipped so
# the runtime CLI keeps working with numpy and pillow alone.
COMMAND_MODULES = [
    "ternpynq.bundle.commands",
    "ternpynq.runtime.commands",
    "ternpynq.overlay.estimate",
    "ternpynq.runtime.selftest",
    "ternpynq.overlay.doctor",
    "ternpynq.serve.commands",
    "ternpynq.train.commands",
    "ternpynq.zoo.commands",
]


class CommandError(Exception):
    """An expected failure that the CLI prints as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ternpynq",
        description="Ternary, PE-wise pruned CNNs: inspect, classify, train, export, serve.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # an optional extra is not installed
            if exc.name and exc.name.startswith("ternpynq"):
                raise
            continue
        module.register(sub)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"ternpynq: warning: {message}", file=sys.stderr if file is None else file)


def main(argv: list[str] | None = None) -> int:
    from ternpynq.bundle.errors import BundleError

    warnings.showwarning = _one_line_warning  # e.g. "re-save this old bundle", as one line
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CommandError, BundleError, ValueError, OSError) as exc:
        print(f"ternpynq {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"ternpynq {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # run the imported module's main, not this __main__ copy: otherwise the CommandError that
    # subcommands import from ternpynq.cli is a different class from the one caught here
    from ternpynq.cli import main as package_main

    sys.exit(package_main())
