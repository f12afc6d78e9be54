"""Property-based: random stacks of every multiply-accumulate kind compile and simulate bit-exact against
PyTorch, with latency and every gap between images equal to the cycle analysis (bench/fuzz.py runs thousands)."""
import warnings

import numpy as np
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from hbnn.sim.fuzz import Case, check_case, draw_case, random_stack
from hbnn.sim.residual_fuzz import dead_quantizers


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 32 - 1))
def test_random_stacks_are_bit_exact_with_analytical_cycles(seed):
    case = draw_case(np.random.default_rng(seed))
    # A quantizer that saw only zeros in calibration has no scale to map (the compiler refuses it, naming the layer).
    assume(not dead_quantizers(random_stack(case.precisions, case.sizes, seed=case.seed)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # components of a refused case are never elaborated; nothing to warn about
        result = check_case(case)
    assert result.passed, result.describe()


def test_a_deep_int8_requantizing_stack():
    """255-level thresholds between int8 layers, a weight-binary layer, wide SIMD and PE = 1 in one chain."""
    case = Case(("int8", "int8", "weight-binary", "int8"), (32, 16, 24, 8, 5), ((16, 32), (1, 8), (8, 4), (5, 1)),
                images=5, seed=3)
    assert check_case(case).passed
