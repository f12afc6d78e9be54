"""The whole chain in Verilator: every output integer equals PyTorch's, and measured cycles equal the model's."""
import numpy as np
import torch

from hbnn.compiler.build import read_manifest
from hbnn.sim.cosim import compile_simulator, stream_vectors
from hbnn.sim.packing import pack_bipolar, unpack_bipolar, unpack_signed
from hbnn.sim.verify import verify_build


def test_trained_model_is_bit_exact_and_cycles_match(tiny_build, synthetic):
    count = 60
    result = verify_build(tiny_build, synthetic.test_x[:count], synthetic.test_y[:count], backpressure=True, seed=1)
    assert result.images == count
    assert result.outputs_compared == 2 * count * synthetic.classes
    assert result.mismatches == 0
    assert result.torch_accuracy == result.hardware_accuracy
    assert result.torch_accuracy > 1.5 / synthetic.classes  # it learned something: the comparison is not trivial
    assert result.latency == result.predicted_latency
    assert result.interval_spread == (result.predicted_initiation_interval,) * 2


def test_a_wrong_expectation_is_detected(tiny_build, synthetic):
    """The comparison is real: the hardware outputs differ from a model with one weight changed."""
    from hbnn.quant import load_checkpoint
    from hbnn.sim.verify import torch_outputs

    manifest = read_manifest(tiny_build)
    model, _ = load_checkpoint(tiny_build / "model.pt")
    x = synthetic.test_x[:20]
    with torch.no_grad():
        packed = [pack_bipolar(row) for row in model.binarize_input(x).numpy()]
        model.layers[-1].weight[0].neg_()
    run = stream_vectors(tiny_build / "sim", manifest["top"], packed, name="perturbed")
    out = manifest["output"]
    hardware = np.array([unpack_signed(v, out["lanes"], out["lane_bits"]) for v in run.outputs])
    assert (hardware != torch_outputs(model, x)).any()


def test_packing_round_trip():
    vector = np.array([1, -1, -1, 1, 1])
    assert pack_bipolar(vector) == 0b11001
    np.testing.assert_array_equal(unpack_bipolar(0b11001, 5), vector)
    np.testing.assert_array_equal(unpack_signed(0b1111_0011, 2, 4), [3, -1])
