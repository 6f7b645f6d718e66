"""Check every formula of the backpropagation slides, slide by slide.

Each transcription in manual.slides is evaluated on random float64 points of the slide's own
network and compared with torch autograd and with the general manual implementation; derivation
steps are also checked symbolically with sympy. Prints a one-screen report; exit status 0 when the
report is complete, whatever it finds.

    python scripts/check_slides.py [--points 20] [--seed 0] [--json PATH] [--verbose] [--no-sympy]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from torch_ref.slides import check_all, render


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20, help="random points per network (default 20)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator (default 0)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as a JSON list")
    parser.add_argument("--verbose", action="store_true", help="one line per formula as well")
    parser.add_argument("--no-sympy", action="store_true", help="skip the symbolic checks (faster)")
    args = parser.parse_args(argv)
    if args.points < 1:
        parser.error(f"--points must be >= 1, got {args.points}")
    start = time.perf_counter()
    outcomes = check_all(points=args.points, seed=args.seed, symbolic=not args.no_sympy)
    print(render(outcomes, verbose=args.verbose))
    print(f"({time.perf_counter() - start:.1f} s)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump([o.record() for o in outcomes], fh, indent=1, ensure_ascii=False)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
