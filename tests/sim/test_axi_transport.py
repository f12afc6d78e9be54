"""The AXI-Stream top in Verilator, fed as the board's AXI DMA feeds it (hbnn.sim.axi_transport): every frame
layout (transfers split over words, several per word, padded images), both DMA widths, random TVALID gaps and
TREADY stalls, batches of one and many images back to back, TLAST on each batch's last word and nowhere else."""
import json
import shutil

import numpy as np
import pytest

from hbnn.boards.pynq_driver import SPEC_FILE, Frames
from hbnn.hw.axi_stream_top import AXIS_TOP_NAME, AxiStreamTop
from hbnn.hw.dma_layout import DmaLayout
from hbnn.hw.verilog_export import to_verilog
from hbnn.sim.axi_transport import SimulatedDma, tlast_error
from hbnn.sim.flow_control import FlowControl


def deploy_triple_sum(design, folder, dma_bytes: int, images_in_flight: int = 4):
    """A deployment folder around a TripleSum design (tests/sim/conftest.py): its Verilog, the AXI top, and the
    part of accelerator.json the simulated DMA reads."""
    folder.mkdir(parents=True, exist_ok=True)
    into, out = DmaLayout(design.input, dma_bytes), DmaLayout(design.output, dma_bytes)
    shutil.copy(design.verilog, folder / "hbnn_top.v")
    (folder / "hbnn_axis.v").write_text(to_verilog(AxiStreamTop(into, out, images_in_flight=images_in_flight),
                                                   AXIS_TOP_NAME))
    spec = {"verilog": {"top": "hbnn_axis.v", "accelerator": "hbnn_top.v"},
            "input": {**design.input.as_dict(), **into.as_dict()},
            "output": {**design.output.as_dict(), **out.as_dict()},
            "cycles": {"latency": design.latency, "interval": design.interval}}
    (folder / SPEC_FILE).write_text(json.dumps(spec))
    return spec


def triple_sums(frames: np.ndarray) -> np.ndarray:
    """(images, 6, elements) -> (images, 2, elements)."""
    return frames.reshape(len(frames), 2, 3, -1).sum(axis=2)


@pytest.mark.parametrize("elements, dma_bytes", [
    (1, 8),  # 1-byte transfers, an image is 6 of 8 bytes: two padding transfers dropped; outputs padded likewise
    (7, 8),  # 7 bytes -> 8: one transfer per word
    (2, 16),  # 2 bytes, 8 per word, padded
    (30, 8),  # 30 bytes -> 32: four words gathered per transfer; 38-byte outputs split over five words
    (7, 16),  # 8 per 16-byte word: two transfers per word, in and out
])
def test_batches_back_to_back_with_random_gaps_are_exact_and_end_with_tlast(triple_sum, tmp_path, elements,
                                                                          dma_bytes):
    design = triple_sum(elements)
    spec = deploy_triple_sum(design, tmp_path / "deploy", dma_bytes)
    into, out = Frames({**spec["input"]}), Frames({**spec["output"]})
    rng = np.random.default_rng(elements)
    sizes = [1, 5, 1, 12]  # batches of one and many, back to back in one simulation
    batches = [rng.integers(0, 256, size=(n, 6, elements)) for n in sizes]
    for flow in (FlowControl(), FlowControl(0.4, 0.4, seed=elements)):
        dma = SimulatedDma(tmp_path / "deploy", flow)
        outputs = dma.run_batches([(into.pack(batch), len(batch) * out.image_bytes) for batch in batches])
        assert [len(data) for data in outputs] == [n * out.image_bytes for n in sizes]
        for batch, data in zip(batches, outputs):
            np.testing.assert_array_equal(out.unpack(data), triple_sums(batch))
        if not flow.disturbed:
            undisturbed = dma.last_run.output_cycles
        else:
            assert not np.array_equal(dma.last_run.output_cycles, undisturbed)  # the gaps and stalls did reach the design


def test_padding_bytes_after_each_output_image_are_zero(triple_sum, tmp_path):
    design = triple_sum(1)
    spec = deploy_triple_sum(design, tmp_path / "deploy", 8)
    into, out = Frames(spec["input"]), Frames(spec["output"])
    batch = np.full((3, 6, 1), 255)
    (data,) = SimulatedDma(tmp_path / "deploy").run_batches([(into.pack(batch), 3 * out.image_bytes)])
    frames = data.reshape(3, out.image_bytes)
    assert (frames[:, out.transfers * out.transfer_bytes:] == 0).all()
    assert (frames[:, :2].view("<u2") == 3 * 255).all()


def test_a_full_flag_fifo_holds_the_input_without_losing_a_batch_end(triple_sum, tmp_path):
    """Two flag entries while the consumer stalls most cycles: the top holds images back, and still every batch of
    one image ends with TLAST."""
    design = triple_sum(7)
    spec = deploy_triple_sum(design, tmp_path / "deploy", 8, images_in_flight=2)
    into, out = Frames(spec["input"]), Frames(spec["output"])
    rng = np.random.default_rng(3)
    batches = [rng.integers(0, 256, size=(1, 6, 7)) for _ in range(9)]
    outputs = SimulatedDma(tmp_path / "deploy", FlowControl(0.0, 0.8, seed=5)).run_batches(
        [(into.pack(batch), out.image_bytes) for batch in batches])
    for batch, data in zip(batches, outputs):
        np.testing.assert_array_equal(out.unpack(data), triple_sums(batch))


def test_a_batch_whose_size_disagrees_with_its_output_buffer_is_refused(triple_sum, tmp_path):
    design = triple_sum(7)
    spec = deploy_triple_sum(design, tmp_path / "deploy", 8)
    into, out = Frames(spec["input"]), Frames(spec["output"])
    dma = SimulatedDma(tmp_path / "deploy")
    frames = into.pack(np.zeros((2, 6, 7), dtype=int))
    with pytest.raises(ValueError, match="2 images give"):
        dma.run_batches([(frames, out.image_bytes)])
    with pytest.raises(ValueError, match="not whole input frames"):
        dma.run_batches([(frames[:-1], 2 * out.image_bytes)])


def test_a_tlast_out_of_place_is_named_with_its_word():
    assert tlast_error(np.array([0, 1, 0, 0, 1]), [2, 3]) is None
    assert tlast_error(np.array([0, 1, 0, 1, 1]), [2, 3]) == ("TLAST is 1 on output word 3, where a batch goes on "
                                                             "(batches end at words [1, 4])")
    assert "TLAST is 0 on output word 1, where a batch ends" in tlast_error(np.array([0, 0, 0, 0, 1]), [2, 3])
