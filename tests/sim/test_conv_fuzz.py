"""Property-based: random small CNNs (binary with +1 padding, weight-binary, ternary, int8, alpha; kernels 1/3, strides 1/2,
max pools, flatten or global-average heads) compile and simulate bit-exact against PyTorch in Amaranth's simulator,
undisturbed and back-pressured, with latency and every gap between images equal to the cycle analysis
(bench/fuzz.py --conv runs thousands)."""
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings, strategies as st

from hbnn.sim.conv_fuzz import ConvCase, ConvLayer, check_conv_case, draw_conv_case


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2 ** 32 - 1))
def test_random_cnns_are_bit_exact_with_analytical_cycles(seed):
    case = draw_conv_case(np.random.default_rng(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # components of a refused case are never elaborated; nothing to warn about
        result = check_conv_case(case)
    assert result.passed, result.describe()


def test_a_cnv_like_stack():
    """Unpadded 3x3 convs with a 2x2 max pool between (CNV's pattern), an 8-bit first layer on pixels, a binary
    middle, and a flattened int8 classifier, at mixed foldings."""
    layers = (ConvLayer("weight-binary", 4, 3, 1, 0, None), ConvLayer("binary", 4, 3, 1, 0, "2"),
              ConvLayer("binary", 6, 3, 1, 1, None))
    case = ConvCase(3, 8, layers, "flatten", "int8", 5, ((2, 3), (4, 2), (3, 4), (5, 6)), (2,), images=3, seed=11)
    result = check_conv_case(case)
    assert result.passed, result.describe()
