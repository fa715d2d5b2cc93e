"""Wall time of executing each notebook top to bottom (median of several runs).

    python -m qa.bench [--runs 3] [names...]

Each run starts a fresh kernel, as "Restart & Run All" does, so kernel start-up is included.
This is a benchmark, not a test: it prints numbers and asserts nothing.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from coursetools.build import execute_notebook
from coursetools.common import assignments, source_notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    print(f"{'notebook':<26}{'median s':>10}{'min s':>8}{'max s':>8}   ({args.runs} runs each)")
    for name in args.names or assignments():
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            execute_notebook(source_notebook(name))
            times.append(time.perf_counter() - start)
        print(f"{name:<26}{statistics.median(times):>10.2f}{min(times):>8.2f}{max(times):>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
