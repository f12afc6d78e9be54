"""Property-based: random small residual CNNs (identity and 1x1-conv shortcuts, strides 1/2, binary, weight-binary
and int8 convs, integer adds through QuantAdd) compile to a DataflowGraph with forks, adds and bypass FIFOs sized
from the cycle analysis, and simulate bit-exact against PyTorch in Amaranth's simulator, undisturbed and
back-pressured, with latency and every gap between images equal to the analysis (bench/fuzz.py --residual runs
more)."""
import warnings

import numpy as np
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from hbnn.sim.residual_fuzz import (Block, ResidualCase, check_residual_case, dead_quantizers, draw_residual_case,
                                    random_residual_stack)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 32 - 1))
def test_random_residual_cnns_are_bit_exact_with_analytical_cycles(seed):
    case = draw_residual_case(np.random.default_rng(seed))
    assume(not dead_quantizers(random_residual_stack(case)))  # a quantizer that saw only zeros has no scale to map
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # components of a refused case are never elaborated; nothing to warn about
        result = check_residual_case(case)
    assert result.passed, result.describe()


def test_an_identity_block_with_a_slow_branch():
    """ResNet's common block: an identity shortcut beside two 3x3 convs folded slowly (1 x 1), so the bypass FIFO
    holds most of an image while the long branch computes."""
    case = ResidualCase(1, 5, ("int8", 4), (Block(4, 1, "binary", "binary", None),), 3,
                        ((4, 1), (1, 1), (1, 1), (1, 4)), (2,), images=3, seed=5)
    result = check_residual_case(case)
    assert result.passed, result.describe()
