"""``srflow``: the command line. Physics verbs run locally; service verbs talk to a server.

Errors are one line on stderr with a non-zero exit; ``--json`` prints exactly one JSON
object on stdout; progress bars go to stderr.

The verb modules import only the standard library, pydantic, tqdm, the job specs and the
client at their top; what a verb needs beyond that (torch and the physics library for
``hmc``/``train``/``sample``/``run``/``scan``, the registry for ``admin``, app and worker
for ``serve``/``worker``) is imported inside the verb. So ``srflow --help`` starts fast,
and a client-only install (``pip install ".[client]"``: httpx and pydantic) runs the
client verbs ``submit``, ``status``, ``wait``, ``cancel``, ``download`` and ``models``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from cli import demo, flow_verbs, hmc_verbs, scan_verbs, service


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="srflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    hmc_verbs.register(sub)
    flow_verbs.register(sub)
    scan_verbs.register(sub)
    demo.register(sub)
    service.register(sub)
    return parser


SERVICE_MODULES = ("torch", "torchdiffeq", "numpy", "scipy", "h5py", "safetensors",
                   "matplotlib", "fastapi", "uvicorn", "celery", "redis", "sqlalchemy",
                   "alembic", "jinja2", "psycopg", "prometheus_client")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ModuleNotFoundError as err:  # a service verb on a client-only install
        if (err.name or "").split(".")[0] not in SERVICE_MODULES:
            raise
        sys.stderr.write(f"srflow: error: '{args.command}' needs the service install (no "
                         f"module {err.name!r} here): pip install \".[service]\" or run "
                         "it on a server with 'srflow submit'\n")
        return 2
    return code


if __name__ == "__main__":
    raise SystemExit(main())
