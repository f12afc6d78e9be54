import random

import pytest
from amaranth import Module, signed, unsigned
from amaranth.back import rtlil, verilog
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from hbnn.hw.verilog_export import memory_init_as_one_constant, to_verilog


class _Roms(wiring.Component):
    """Read-only memories of the given (shape, depth, init) and a read port each."""

    def __init__(self, specs):
        self._specs = specs
        super().__init__({"addr": In(8), **{f"data{i}": Out(shape) for i, (shape, _, _) in enumerate(specs)}})

    def elaborate(self, platform):
        m = Module()
        for i, (shape, depth, init) in enumerate(self._specs):
            m.submodules[f"rom{i}"] = rom = memory.Memory(shape=shape, depth=depth, init=init)
            port = rom.read_port()
            m.d.comb += [port.addr.eq(self.addr), getattr(self, f"data{i}").eq(port.data)]
        return m


def _random_specs(seed):
    rng = random.Random(seed)
    specs = []
    for _ in range(4):
        width, depth = rng.choice([1, 2, 7, 32, 33, 70]), rng.choice([1, 2, 5, 64])
        shape = signed(width) if rng.random() < 0.5 and width > 1 else unsigned(width)
        low, high = (-(1 << (width - 1)), (1 << (width - 1)) - 1) if shape.signed else (0, (1 << width) - 1)
        init = [rng.randint(low, high) for _ in range(rng.randint(0, depth))]  # short init: zero-filled rows
        specs.append((shape, depth, init))
    return specs


@pytest.mark.parametrize("seed", range(6))
def test_rtlil_is_byte_identical_to_amaranths(seed):
    design = _Roms(_random_specs(seed))
    expected = rtlil.convert(design, name="top", emit_src=False)
    with memory_init_as_one_constant():
        assert rtlil.convert(_Roms(_random_specs(seed)), name="top", emit_src=False) == expected


def test_verilog_is_identical_and_the_backend_restored():
    original = rtlil.ModuleEmitter.emit_memory
    specs = _random_specs(7)
    assert to_verilog(_Roms(specs), "top") == verilog.convert(_Roms(specs), name="top", emit_src=False)
    assert rtlil.ModuleEmitter.emit_memory is original


def test_backend_restored_after_an_error():
    original = rtlil.ModuleEmitter.emit_memory
    with pytest.raises(RuntimeError), memory_init_as_one_constant():
        raise RuntimeError("conversion failed")
    assert rtlil.ModuleEmitter.emit_memory is original
