"""Long fuzz run (issue 18): the property-based suite of tests/fuzz with many examples.

The test suite runs 40 deterministic examples per property; this runs ``--examples``
random ones per property (``HYPOTHESIS_PROFILE=soak``) and writes what ran, how long
it took and the outcome to bench/results/fuzz.md.

    python bench/fuzz.py --examples 2000
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "fuzz.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=2000, help="examples per property")
    args = parser.parse_args()
    env = {**os.environ, "HYPOTHESIS_PROFILE": "soak", "FUZZ_EXAMPLES": str(args.examples)}
    env.setdefault("OMP_NUM_THREADS", "1")
    rows = []
    for test in sorted((ROOT / "tests" / "fuzz").glob("test_*.py")):
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", str(test), "-q", "-p", "no:cacheprovider"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr
        counts = re.sub(r"\s+in\s+[\d.]+s.*", "", summary.strip("= "))
        rows.append(f"| {test.name} | {args.examples} | {counts} | {seconds:.0f} |")
        print(rows[-1], flush=True)
        if proc.returncode:
            print(proc.stdout[-4000:], file=sys.stderr)
    load = os.getloadavg()[0]
    text = "\n".join(
        [
            "# Fuzz run (bench/fuzz.py)",
            "",
            f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load:.1f} "
            "(shared with other engineers' jobs). Random examples (HYPOTHESIS_PROFILE=soak).",
            "",
            "| file | examples per property | outcome | seconds |",
            "|---|---|---|---|",
            *rows,
        ]
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
