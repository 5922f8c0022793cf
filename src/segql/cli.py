"""The ``segql`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import pyarrow.compute as pc

import segql
from segql.errors import SegqlError


def _demo(args: argparse.Namespace) -> int:
    from segql import demo

    source = demo.source()
    program = segql.compile(source, source_name="demo/customers.segql")
    customers = demo.customers()
    orders = demo.orders(customers)
    out = program.evaluate(customers, key="customer_id", related={"orders": orders}, as_of=demo.AS_OF)
    total = out.num_rows
    print(
        f"segql demo: {total:,} generated customers with {orders.num_rows:,} orders, "
        f"as of {demo.AS_OF.date().isoformat()}"
    )
    print(f"segment file: {len(program.segments)} segments, {len(program.features)} features")
    print()
    width = max(len(s) for s in program.segments)
    print(f"{'segment'.ljust(width)}  {'members':>8}  {'share':>6}")
    descriptions = program.descriptions
    for name in program.segments:
        count = pc.sum(out.column(name)).as_py() or 0
        line = f"{name.ljust(width)}  {count:>8,}  {count / total:>6.1%}"
        if descriptions.get(name):
            line += f"  {descriptions[name]}"
        print(line)
    print()
    print("Try: segql demo --source   (show the segment file)")
    if args.source:
        print()
        print(source)
    return 0


def _check(args: argparse.Namespace) -> int:
    with open(args.file, encoding="utf-8") as f:
        source = f.read()
    program = segql.compile(source, source_name=args.file)
    print(f"{args.file}: ok ({len(program.segments)} segments, {len(program.features)} features)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segql",
        description="segql: customer segments in a small query language, evaluated on Apache Arrow.",
    )
    parser.add_argument("--version", action="version", version=f"segql {segql.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="run a bundled example segment file over generated customers (offline)")
    demo.add_argument("--source", action="store_true", help="also print the segment file")
    demo.set_defaults(func=_demo)
    check = sub.add_parser("check", help="check a segment file's syntax and names")
    check.add_argument("file")
    check.set_defaults(func=_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result: int = args.func(args)
        return result
    except SegqlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into `head` and closed early: not an error.
        sys.stderr.close()
        return 0
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
