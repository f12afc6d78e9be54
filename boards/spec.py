"""Target boards as data: part, fabric resources and the default accelerator clock."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Board", "BOARDS", "get_board"]


@dataclass(frozen=True)
class Board:
    name: str
    part: str
    yosys_family: str  # synth_xilinx -family
    luts: int
    flip_flops: int
    dsps: int
    bram36: int  # 36 Kb block RAMs (each also usable as two 18 Kb halves)
    clock_mhz: float  # the PS fabric clock the PYNQ overlay flow uses by default
    vivado_board: str = ""  # the board's name in Vivado's board files (vendor:NAME:part0:version)

    def as_dict(self) -> dict:
        return {"name": self.name, "part": self.part, "yosys_family": self.yosys_family, "luts": self.luts,
                "flip_flops": self.flip_flops, "dsps": self.dsps, "bram36": self.bram36,
                "clock_mhz": self.clock_mhz}


# Resource counts from the AMD/Xilinx product tables of each device.
BOARDS = {board.name: board for board in (
    Board("pynq-z1", "xc7z020clg400-1", "xc7", 53_200, 106_400, 220, 140, 100.0, "pynq-z1"),
    Board("pynq-z2", "xc7z020clg400-1", "xc7", 53_200, 106_400, 220, 140, 100.0, "pynq-z2"),
    Board("ultra96", "xczu3eg-sbva484-1-i", "xcup", 70_560, 141_120, 360, 216, 100.0, "ultra96v2"),
    Board("zcu104", "xczu7ev-ffvc1156-2-e", "xcup", 230_400, 460_800, 1_728, 312, 100.0, "zcu104"),
    Board("kv260", "xck26-sfvc784-2LV-c", "xcup", 117_120, 234_240, 1_248, 144, 100.0, "kv260_som"),
)}


def get_board(name: str) -> Board:
    try:
        return BOARDS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown board {name!r}; known boards: {', '.join(BOARDS)}") from None
