"""The `depinflow` command: one dispatcher, one module per subcommand.

Each subcommand lives in its own module under `pipelines.cli` and exposes
`add_arguments(parser)` and `run(args) -> int`. Modules are imported lazily so
that `depinflow decode-ix` does not pay for importing the ClickHouse engine.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand name -> (module under pipelines.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("cmd_run", "run the whole pipeline on the embedded default (broker + ClickHouse + listener + sink)"),
    "infra": ("cmd_infra", "bring the embedded Kafka broker and ClickHouse up, down, or report status"),
    "decode-ix": ("cmd_decode", "decode one Anchor instruction from hex with an IDL file"),
    "decode-tx": ("cmd_decode_tx", "decode a getTransaction JSON into its instruction tree"),
    "flows": ("cmd_flows", "print the classified flow events of a getTransaction JSON"),
    "devchain": ("cmd_devchain", "the chain simulator: serve a generated ledger, or print its ground truth"),
    "listen": ("cmd_listen", "follow Solana RPC and publish classified events to Kafka"),
    "sink": ("cmd_sink", "consume the Kafka topics into ClickHouse"),
    "migrate": ("cmd_migrate", "apply the ClickHouse migrations"),
    "sql": ("cmd_sql", "run a read-only SELECT against the running service or the data directory"),
    "report": ("cmd_report", "the invoice report: usage fees vs emissions per network and day"),
}


def _available(name: str) -> bool:
    module, _ = COMMANDS[name]
    return importlib.util.find_spec(f"pipelines.cli.{module}") is not None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the parser; with `only`, import just that subcommand's module."""
    parser = argparse.ArgumentParser(prog="depinflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        if not _available(name):
            continue
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is None or only == name:
            mod = importlib.import_module(f"pipelines.cli.{module}")
            mod.add_arguments(p)
            p.set_defaults(_module=mod)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    if not getattr(args, "_module", None):
        parser.print_help()
        return 2
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
