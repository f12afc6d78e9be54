"""Cycle-level twins of the components' stream protocols, and a scheduler that steps a chain of them.

A model follows one component's valid/ready rules, not its data: `valid` is the output valid this cycle (every
component here registers it, so it depends on state only), `ready(out_ready)` the input ready this cycle given the
downstream ready (none of them looks at the input valid), and `clock(in_valid, out_ready)` the clock edge. A
transfer is handshaken in the cycle where valid and ready are both high, as `hbnn.sim.amaranth_stream` counts.

Adding latencies is not exact for a chain: stages overlap, and a splitting width converter back-pressures its
producer within an image. `schedule` steps the models together instead: each cycle the valids (state), then the
readies from the sink back to the source (the ready chain is combinational), then the handshakes, then the clocks.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["HandshakeModel", "PassThrough", "Chained", "Handshakes", "schedule", "PortHandshakeModel", "as_ports"]


class HandshakeModel:
    """One component's stream protocol, stepped a cycle at a time; starts in the component's reset state."""

    valid: bool = False  # output valid this cycle; subclasses keep it as a plain attribute or a property

    def ready(self, out_ready: bool) -> bool:
        """Input ready this cycle, given the downstream ready."""
        raise NotImplementedError

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        """The clock edge at the end of this cycle."""
        raise NotImplementedError

    def step(self, in_valid: bool, out_ready: bool) -> tuple[bool, bool]:
        """One cycle: (input handshake, output handshake), then the clock edge."""
        fired = (in_valid and self.ready(out_ready), self.valid and out_ready)
        self.clock(in_valid, out_ready)
        return fired


class PassThrough(HandshakeModel):
    """Wires: valid and ready pass straight through, so valid depends on the input valid, not on state. It has no
    cycle of its own; `Chained` (and so `schedule`) drops it, and it cannot stand alone."""

    @property
    def valid(self) -> bool:
        raise TypeError("a pass-through has no valid of its own; chain it (Chained drops it)")

    def ready(self, out_ready: bool) -> bool:
        return out_ready

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        pass

    def step(self, in_valid: bool, out_ready: bool) -> tuple[bool, bool]:
        return in_valid and out_ready, in_valid and out_ready


class Chained(HandshakeModel):
    """Models connected output to input: itself a model (a width converter's split-then-gather is one)."""

    def __init__(self, models: Sequence[HandshakeModel]):
        flat = []
        for model in models:
            if isinstance(model, Chained):
                flat.extend(model.models)
            elif not isinstance(model, PassThrough):  # wires: the same handshakes on both sides
                flat.append(model)
        self.models = tuple(flat)

    @property
    def valid(self) -> bool:
        if not self.models:
            raise TypeError("a chain of pass-throughs has no valid of its own")
        return self.models[-1].valid

    def ready(self, out_ready: bool) -> bool:
        for model in reversed(self.models):
            out_ready = model.ready(out_ready)
        return out_ready

    def clock(self, in_valid: bool, out_ready: bool) -> None:
        self.step(in_valid, out_ready)

    def step(self, in_valid: bool, out_ready: bool) -> tuple[bool, bool]:
        models = self.models
        if not models:
            return in_valid and out_ready, in_valid and out_ready
        # Valids first (state only), readies from the sink back, then every edge at once.
        valids = [in_valid] + [model.valid for model in models]
        readies = [out_ready] * (len(models) + 1)
        for index in range(len(models) - 1, -1, -1):
            readies[index] = models[index].ready(readies[index + 1])
        for index, model in enumerate(models):
            model.clock(valids[index], readies[index + 1])
        return in_valid and readies[0], valids[-1] and out_ready


class PortHandshakeModel:
    """A component with several streams (a fork, a join): `valids` per output stream (state only), `readies` per
    input stream given every input valid and output ready (a join's input ready needs the other input's valid),
    `clock` the clock edge. Streams in the order of hbnn.hw.dataflow_graph.stream_ports."""

    @property
    def valids(self) -> tuple[bool, ...]:
        raise NotImplementedError

    def readies(self, in_valids, out_readies) -> tuple[bool, ...]:
        raise NotImplementedError

    def clock(self, in_valids, out_readies) -> None:
        raise NotImplementedError


class _OneStreamEach(PortHandshakeModel):
    """A HandshakeModel seen as a PortHandshakeModel with one input and one output stream."""

    def __init__(self, model: HandshakeModel):
        self.model = model

    @property
    def valids(self) -> tuple[bool]:
        return (self.model.valid,)

    def readies(self, in_valids, out_readies) -> tuple[bool]:
        return (self.model.ready(out_readies[0]),)

    def clock(self, in_valids, out_readies) -> None:
        self.model.clock(in_valids[0], out_readies[0])


def as_ports(model) -> PortHandshakeModel:
    if isinstance(model, PortHandshakeModel):
        return model
    if isinstance(model, PassThrough):
        raise TypeError("a pass-through has no valid of its own: a graph cannot hold it as a node")
    return _OneStreamEach(model)


@dataclass(frozen=True)
class Handshakes:
    """Cycles of every handshake at the chain's input and output, in order; `cycles` were stepped."""
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    cycles: int


def _always(cycle: int) -> bool:
    return True


def _compiled_step(models: Sequence[HandshakeModel]) -> Callable[[bool, bool], tuple[bool, bool]]:
    """Chained(models).step written out for these models, without its loops and lists: the same valids, readies
    and clocks in the same order. Whole-network cycle analyses step every model for every cycle of several images,
    and the generic loop's overhead was half their time."""
    count = len(models)
    names = {f"m{i}": model for i, model in enumerate(models)}
    names.update({f"ready{i}": model.ready for i, model in enumerate(models)})
    names.update({f"clock{i}": model.clock for i, model in enumerate(models)})
    lines = ["def step(in_valid, out_ready):"]
    lines += [f"    v{i} = m{i}.valid" for i in range(count)]
    lines.append(f"    r{count} = out_ready")
    lines += [f"    r{i} = ready{i}(r{i + 1})" for i in range(count - 1, -1, -1)]
    lines.append("    clock0(in_valid, r1)")
    lines += [f"    clock{i}(v{i - 1}, r{i + 1})" for i in range(1, count)]
    lines.append(f"    return in_valid and r0, v{count - 1} and out_ready")
    exec("\n".join(lines), names)  # noqa: S102 - generated from the fixed template above, no outside text
    return names["step"]


def schedule(models: Sequence[HandshakeModel], transfers: int, cycles: int, *,
             input_valid: Callable[[int], bool] = _always, output_ready: Callable[[int], bool] = _always,
             outputs: int | None = None) -> Handshakes:
    """Steps the models, chained, from their present state (give fresh ones, in reset state) for at most `cycles`
    cycles, or until `outputs` output handshakes.

    The source offers its next transfer in every cycle where `input_valid(cycle)` holds, while any of its `transfers`
    are left; the sink is ready when `output_ready(cycle)`.
    """
    chain = Chained(models)
    step = _compiled_step(chain.models) if chain.models else chain.step
    inputs, taken = [], []
    left = transfers
    wanted = outputs if outputs is not None else -1
    for cycle in range(cycles):
        fired_in, fired_out = step(left > 0 and input_valid(cycle), output_ready(cycle))
        if fired_in:
            inputs.append(cycle)
            left -= 1
        if fired_out:
            taken.append(cycle)
            if len(taken) == wanted:
                return Handshakes(tuple(inputs), tuple(taken), cycle + 1)
    return Handshakes(tuple(inputs), tuple(taken), cycles)
