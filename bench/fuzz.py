"""Fuzzes the compiler and the hardware: thousands of random layer stacks (binary, weight-binary, ternary, int8,
with and without alpha, random batch norms and foldings), each compiled and streamed through its Dataflow in Amaranth's
simulator, undisturbed and with random back-pressure, against PyTorch (hbnn.sim.fuzz); with --conv, random small
CNNs instead (hbnn.sim.conv_fuzz: windows, pools, flatten and global-average heads); with --residual, random small
residual CNNs (hbnn.sim.residual_fuzz: forks, integer adds, bypass FIFOs sized from the cycle analysis).

    .venv/bin/python bench/fuzz.py --cases 2000 [--seed 0] [--max-layers 3] [--max-width 24] [--conv | --residual]

Prints the count of cases that passed and the first counterexample, if any, with everything needed to rerun it.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

from hbnn.sim.conv_fuzz import check_conv_case, draw_conv_case
from hbnn.sim.fuzz import check_case, draw_case, random_stack
from hbnn.sim.residual_fuzz import check_residual_case, dead_quantizers, draw_residual_case, random_residual_stack


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-layers", type=int, default=3)
    parser.add_argument("--max-width", type=int, default=24)
    kind = parser.add_mutually_exclusive_group()
    kind.add_argument("--conv", action="store_true", help="random small CNNs instead of dense stacks")
    kind.add_argument("--residual", action="store_true", help="random small residual CNNs instead of dense stacks")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.monotonic()
    passed = degenerate = 0
    kinds: dict[str, int] = {}
    for index in range(args.cases):
        if args.conv:
            case = draw_conv_case(rng, max_layers=args.max_layers)
        elif args.residual:
            case = draw_residual_case(rng, max_blocks=args.max_layers)
            if dead_quantizers(random_residual_stack(case)):  # degenerate: a quantizer saw only zeros
                degenerate += 1
                continue
        else:
            case = draw_case(rng, max_layers=args.max_layers, max_width=args.max_width)
            if dead_quantizers(random_stack(case.precisions, case.sizes, seed=case.seed)):
                degenerate += 1
                continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check = check_conv_case if args.conv else check_residual_case if args.residual else check_case
            result = check(case)
        if not result.passed:
            print(f"case {index} FAILED: {result.describe()}")
            print(f"{passed} of {index + 1} cases passed before it ({time.monotonic() - started:.0f} s)")
            return 1
        passed += 1
        if args.conv:
            precisions = [layer.precision for layer in case.layers]
        elif args.residual:
            precisions = [p for block in case.blocks for p in (block.conv1, block.conv2, block.shortcut or "identity")]
        else:
            precisions = case.precisions
        for precision in precisions:
            kinds[precision] = kinds.get(precision, 0) + 1
        if (index + 1) % 100 == 0:
            print(f"{index + 1} cases, all bit-exact with analytical cycles ({time.monotonic() - started:.0f} s)",
                  flush=True)
    layers = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    skipped = (f" ({degenerate} drawn cases skipped: an int8 quantizer calibrated on zeros only, "
               "hbnn.sim.residual_fuzz.dead_quantizers)") if degenerate else ""
    print(f"{passed} of {args.cases - degenerate} cases passed{skipped}: bit-exact outputs (undisturbed and "
          f"back-pressured) and latency and gaps equal to the analysis; layers drawn: {layers}; "
          f"{time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
