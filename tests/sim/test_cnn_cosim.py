"""A whole trained CNN in Verilator: ResNet-14 without shortcuts (binary variant: an int8 stem, binary 3x3 convs
padded with +1, stride-2 windows, an int8 quantizer before the global average pool, an int8 classifier with bias),
trained on the synthetic images, compiled and co-simulated: every output equals PyTorch's, cycles the analysis'."""
import pytest
import torch

from hbnn.boards import get_board
from hbnn.compiler.build import compile_checkpoint
from hbnn.quant.checkpoint import save_checkpoint
from hbnn.quant.models import build_model
from hbnn.quant.train import train
from hbnn.sim.verify import verify_build


@pytest.fixture(scope="module")
def cnn_build(tmp_path_factory, synthetic):
    torch.manual_seed(0)
    channels, size, _ = synthetic.image_shape
    model = build_model("resnet14", precision="binary", in_channels=channels, num_classes=synthetic.classes,
                        image_size=size, full_precision="int8", shortcuts="none")
    train(model, synthetic, epochs=2, seed=0, progress=False)
    out = tmp_path_factory.mktemp("cnn")
    save_checkpoint(out / "model.pt", model, {"dataset": "synthetic", "data_root": None})
    graph, manifest = compile_checkpoint(out / "model.pt", out / "build", get_board("pynq-z2"), target_cycles=256)
    return out / "build", manifest


def test_a_trained_cnn_is_bit_exact_with_analytical_cycles(cnn_build, synthetic):
    build, _ = cnn_build
    count = 60
    result = verify_build(build, synthetic.test_x[:count], synthetic.test_y[:count], backpressure=True, seed=1,
                          crosscheck=3)
    assert result.images == count and result.mismatches == 0
    assert result.torch_accuracy == result.hardware_accuracy > 1.5 / synthetic.classes
    assert result.latency == result.predicted_latency
    assert result.gaps_match and result.initiation_interval == result.predicted_initiation_interval
    assert result.engines_agree and result.passed


def test_the_manifest_describes_windows_pools_and_the_host_division(cnn_build):
    _, manifest = cnn_build
    layers = {layer["name"]: layer for layer in manifest["layers"]}
    assert layers["block1.conv1"]["window"]["kernel"] == 3 and layers["block1.conv1"]["window"]["pad_element"] == 1
    assert layers["stem.conv"]["window"]["pad_element"] == 0  # int8 pixels pad with 0
    assert layers["block2.conv1"]["window"]["stride"] == 2
    (pool,) = manifest["pools"]
    assert pool["kind"] == "sum" and pool["threshold"] == "fc.input_quant"  # the average folds into fc's quantizer
    assert manifest["output"]["divisor"] == 1 and "bias" not in layers["fc"]


def test_the_packaged_cnn_through_the_pynq_driver_equals_pytorch(cnn_build, synthetic, tmp_path):
    """hbnn package on the CNN build; its driver, on the verilated AXI-Stream top with random gaps and stalls, in
    batches of 1 and 9 images: every score equals PyTorch's on the same uint8 pixels."""
    from hbnn.boards.package import package_build
    from hbnn.sim.axi_transport import check_deployment, pixels_of
    from hbnn.sim.flow_control import FlowControl

    build, _ = cnn_build
    spec = package_build(build, tmp_path / "deploy", synthesis=False, log=lambda *_: None)
    assert spec["input"]["image_shape"] == list(synthetic.image_shape)
    for batch_images in (1, 9):
        result = check_deployment(tmp_path / "deploy", build / "model.pt", pixels_of(synthetic.test_x[:12]),
                                  synthetic.test_y[:12].numpy(), batch_images=batch_images,
                                  flows=(FlowControl(0.3, 0.3, seed=batch_images),))
        assert result["mismatches"] == 0 and result["torch_accuracy"] == result["driver_accuracy"]
