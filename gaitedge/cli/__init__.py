"""The ``gaitedge`` command line: a thin layer over the library API.

One module per command group; each adds its parsers (``add_parser``) and runs
its commands (``cmd_*``) by calling library functions with typed arguments.
Shared parsing helpers are in :mod:`gaitedge.cli.common`.  Only this package
imports argparse.

User mistakes (bad files, options, configs) end with one ``gaitedge: error:``
line and exit status 2; no traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from gaitedge import __version__
from gaitedge.cli import data, device, evaluate, export, memory, stream, train
from gaitedge.cli.common import one_line_skips
from gaitedge.errors import GaitedgeError, SkippedTrialWarning

#: the command groups, in the order ``gaitedge --help`` lists them
GROUPS = (train, evaluate, data, export, stream, device, memory)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    p = argparse.ArgumentParser(prog="gaitedge", description="Gait-phase recognition from IMUs, from training to the edge.")
    p.add_argument("--version", action="version", version=f"gaitedge {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gaitedge`` console script."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", SkippedTrialWarning)
            warnings.showwarning = one_line_skips(warnings.showwarning)
            code = int(args.func(args) or 0)
    except GaitedgeError as exc:
        print(f"gaitedge: error: {exc}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        print("gaitedge: interrupted", file=sys.stderr)
        code = 130
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and argv is None:
        # A torchrun worker whose command has finished (run directory written, process
        # group destroyed): gloo's worker threads can outlive the process group and
        # abort the interpreter's teardown when they release their last tensors, so
        # the worker leaves without it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
