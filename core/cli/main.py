"""``srflow``: the command line. Physics verbs run locally; service verbs talk to a server.

Errors are one line on stderr with a non-zero exit; ``--json`` prints exactly one JSON
object on stdout; progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    from core.cli import demo, flow_verbs, physics, scan_verbs

    parser = _Parser(prog="srflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    physics.register(sub)
    flow_verbs.register(sub)
    scan_verbs.register(sub)
    demo.register(sub)
    try:
        from core.cli import service
    except ImportError:  # the service verbs land separately
        service = None  # type: ignore[assignment]
    if service is not None:
        service.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
