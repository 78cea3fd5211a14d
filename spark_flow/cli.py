"""`spark-flow`: the command line of the toolkit."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spark-flow", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the demo pipeline on generated data")
    demo.add_argument("--workdir", type=Path, default=Path("data/demo"), help="demo folder")
    demo.add_argument("--rows", type=int, default=50, help="devices to generate")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "demo":
        from spark_flow.demo import print_report, run_demo

        print_report(run_demo(args.workdir, rows=args.rows), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
