"""Switching activity out of a SAIF file (Verilator's `--trace-saif`, written by `hbnn sim --activity`).

A SAIF file counts, for every net of every instance, its toggles (TC) over the recorded window (DURATION). This
module sums them per instance subtree: `nets` (bits), `toggles`, and the toggle rate per bit and clock cycle,
the activity the energy model multiplies with each component's cells.

What the numbers are: RTL nets, as Verilator sees them. Amaranth writes an alias wire for each element of an array
signal (its debug names), so an array's bits count twice, with the same toggles: the rate per bit is unchanged,
the totals are not meaningful on their own. The clock nets are left out (clock power is its own term).

Verilator's SAIF writer counts a net that is 1 when the window opens as one toggle (from its initial 0). A net high
through the whole window (T0 = 0) with that one toggle is counted as still here; a net that starts high and then
moves keeps the extra toggle: at most one per net per window, small against a window of many images.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Activity", "SaifActivity", "read_saif", "stage_activity"]

_INSTANCE = re.compile(r"^\s*\(INSTANCE\s+(\S+)\s*$")
_NET = re.compile(r"^\s*\((\S+)\s+\(T0 (\d+)\).*\(TC (\d+)\)\)\s*$")
_DURATION = re.compile(r"^\s*\(DURATION\s+(\d+)\)")
_CLOCK_NETS = ("clk", "ap_clk")


@dataclass(frozen=True)
class Activity:
    nets: int  # bits (RTL nets, aliases included)
    toggles: int  # over the window

    def rate(self, cycles: int) -> float:
        """Toggles per bit per clock cycle (a net toggling every cycle: 1.0; the clock itself would be 2.0)."""
        return self.toggles / (self.nets * cycles) if self.nets and cycles else 0.0

    def __add__(self, other: Activity) -> Activity:
        return Activity(self.nets + other.nets, self.toggles + other.toggles)


@dataclass(frozen=True)
class SaifActivity:
    duration: int  # in the file's time unit
    instances: dict[str, Activity]  # own nets of each instance, by path ("a/b/c")

    def subtree(self, path: str) -> Activity:
        """The instance at `path` with everything below it."""
        total = Activity(0, 0)
        for name, activity in self.instances.items():
            if name == path or name.startswith(path + "/"):
                total = total + activity
        return total

    def children(self, path: str) -> list[str]:
        depth = path.count("/") + 1
        return sorted(name for name in self.instances if name.startswith(path + "/") and name.count("/") == depth)


def _lines(path) -> Iterator[str]:
    with open(path) as file:
        yield from file


def read_saif(path) -> SaifActivity:
    """Reads Verilator's SAIF layout: one INSTANCE or net per line, closing parentheses on lines of their own."""
    duration, stack, instances, depth_of = None, [], {}, []
    depth = 0
    for line in _lines(path):
        if duration is None and (match := _DURATION.match(line)):
            duration = int(match.group(1))
            continue
        if match := _INSTANCE.match(line):
            stack.append(match.group(1))
            depth_of.append(depth)
            instances.setdefault("/".join(stack), Activity(0, 0))
            depth += 1
            continue
        if match := _NET.match(line):
            if stack and match.group(1) not in _CLOCK_NETS:
                key = "/".join(stack)
                low, toggles = int(match.group(2)), int(match.group(3))
                if low == 0 and toggles == 1:
                    toggles = 0  # high all window: the writer's opening "toggle"
                instances[key] = instances[key] + Activity(1, toggles)
            continue
        depth += line.count("(") - line.count(")")
        while depth_of and depth <= depth_of[-1]:
            stack.pop()
            depth_of.pop()
    if duration is None:
        raise ValueError(f"{path}: no DURATION: not a SAIF file")
    return SaifActivity(duration, instances)


def stage_activity(saif: SaifActivity, cycles: int, stages: list[dict], top: str = "hbnn_top") -> list[dict]:
    """One entry per stage of a build (manifest["cycles"]["stages"], in order): its node, component, RTL bits and
    toggle rate, from the accelerator's instance `stage<i>` (a chain) or `node<i>` (a graph)."""
    root = f"{top}/{top}"
    if root not in saif.instances:
        raise ValueError(f"the SAIF file has no instance {root!r} (instances: {sorted(saif.instances)[:5]}...)")
    entries = []
    for index, stage in enumerate(stages):
        path = next((f"{root}/{kind}{index}" for kind in ("stage", "node")
                     if f"{root}/{kind}{index}" in saif.instances), None)
        if path is None:
            raise ValueError(f"the SAIF file has no instance for stage {index} ({stage['component']})")
        activity = saif.subtree(path)
        entries.append({"stage": index, "node": stage["node"], "component": stage["component"], "bits": activity.nets,
                        "toggles": activity.toggles, "toggle_rate": round(activity.rate(cycles), 6)})
    return entries
