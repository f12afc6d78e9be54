"""Cycle-level twins of the components' stream protocols, and a scheduler that steps a chain of them.

A model follows one component's valid/ready rules, not its data: `valid` is the output valid this cycle (every
component here registers it, so it depends on state only), `ready(out_ready)` the input ready this cycle given the
downstream ready (none of them looks at the input valid), and `clock(in_valid, out_ready)` the clock edge. A
transfer is handshaken in the cycle where valid and ready are both high, as `hbnn.sim.amaranth_stream` counts.

Adding latencies is not exact for a chain: stages overlap, and a splitting width converter back-pressures its
producer within an image. `schedule` steps the models together instead: each cycle the valids (state), then the
readies from the sink back to the source (the ready chain is combinational), then the handshakes, then the clocks.

A whole CNN's analysis is hundreds of thousands of cycles per image, most of them quiet: no handshake anywhere, the
stalled stages frozen and the busy ones counting folds. `quiet` and `skip` let `schedule` put such a model to sleep until
its inputs change, with one call for all the clock edges it slept through; they change nothing about which cycle a
handshake fires in (tests compare both ways of stepping).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["FOREVER", "HandshakeModel", "PassThrough", "Chained", "Handshakes", "schedule", "PortHandshakeModel", "as_ports"]


FOREVER = 1 << 62  # a quiet span without end: nothing in the model moves until a handshake


class HandshakeModel:
    """One component's stream protocol, stepped a cycle at a time; starts in the component's reset state."""

    valid: bool = False  # output valid this cycle; subclasses keep it as a plain attribute or a property
    RECORDS: tuple[str, ...] = ()  # attributes that record what happened, not state that decides what happens next

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        """Cycles, this one included, through which `valid` and `ready(out_ready)` stay as they are now, given that
        in_valid and out_ready stay as they are and no handshake fires on either side (the caller makes sure of
        both). 1 promises nothing beyond this cycle; FOREVER: nothing changes until a handshake."""
        return 1

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        """`cycles` clock edges inside a quiet span (cycles < quiet(in_valid, out_ready))."""
        for _ in range(cycles):
            self.clock(in_valid, out_ready)

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

    def _signals(self, in_valid: bool, out_ready: bool) -> tuple[list[bool], list[bool]]:
        valids = [in_valid] + [model.valid for model in self.models]
        readies = [out_ready] * (len(self.models) + 1)
        for index in range(len(self.models) - 1, -1, -1):
            readies[index] = self.models[index].ready(readies[index + 1])
        return valids, readies

    def quiet(self, in_valid: bool, out_ready: bool) -> int:
        # Quiet while no member hands over to the next and every member is quiet.
        valids, readies = self._signals(in_valid, out_ready)
        if not self.models or any(valids[i] and readies[i] for i in range(1, len(self.models))):
            return 1
        return min(model.quiet(valids[i], readies[i + 1]) for i, model in enumerate(self.models))

    def skip(self, cycles: int, in_valid: bool, out_ready: bool) -> None:
        valids, readies = self._signals(in_valid, out_ready)
        for i, model in enumerate(self.models):
            model.skip(cycles, valids[i], readies[i + 1])

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

    def quiet(self, in_valids, out_readies) -> int:
        """As HandshakeModel.quiet, for every stream: 1 promises nothing, FOREVER that nothing moves until a
        handshake."""
        return 1

    def skip(self, cycles: int, in_valids, out_readies) -> None:
        for _ in range(cycles):
            self.clock(in_valids, out_readies)


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


def _compiled_lazy_run(models: Sequence[HandshakeModel]) -> Callable[[int, int, int], tuple[list, list, int]]:
    """A schedule loop for these models with the source always offering and the sink always ready, written out
    with every model's bookkeeping in locals. A model without a handshake on either side whose quiet span is longer
    than this cycle sleeps: its clock edges are deferred (one `skip` when it wakes) and its ready is remembered, until
    its input valid or output ready changes or the span ends; its valid is not read again meanwhile. Stalled stages
    and stages counting folds cost a few comparisons a cycle instead of two calls. Returns (input cycles, output cycles, cycles stepped)."""
    count = len(models)
    names = {f"m{i}": model for i, model in enumerate(models)}
    for kind in ("ready", "clock", "quiet", "skip"):
        names.update({f"{kind}{i}": getattr(model, kind) for i, model in enumerate(models)})
    vin = ["in_valid"] + [f"v{i}" for i in range(count)]  # model i's input valid
    body = ["def run(left, cycles, wanted):",
            "    inputs = []",
            "    outputs = []",
            "    cycle = 0"]
    for i in range(count):
        # asleep, input valid and output ready it sleeps on, first deferred cycle, last cycle of the span, ready
        body.append(f"    a{i} = sv{i} = sr{i} = cr{i} = False")
        body.append(f"    s{i} = w{i} = 0")
    body += ["    while cycle < cycles:",
             "        in_valid = left > 0"]
    for i in range(count):  # a sleeping model's valid stands still: not read again
        body += [f"        if not a{i}:", f"            v{i} = m{i}.valid"]
    body.append(f"        r{count} = True")
    for i in range(count - 1, -1, -1):
        body += [f"        if a{i}:",
                 f"            if {vin[i]} != sv{i} or r{i + 1} != sr{i} or cycle >= w{i}:",
                 f"                skip{i}(cycle - s{i}, sv{i}, sr{i})",
                 f"                a{i} = False",
                 f"                r{i} = ready{i}(r{i + 1})",
                 "            else:",
                 f"                r{i} = cr{i}",
                 "        else:",
                 f"            r{i} = ready{i}(r{i + 1})"]
    for i in range(count):
        body += [f"        if not a{i}:",
                 f"            if not ({vin[i]} and r{i}) and not (v{i} and r{i + 1}) "
                 f"and (q := quiet{i}({vin[i]}, r{i + 1})) > 1:",
                 f"                a{i}, sv{i}, sr{i}, s{i}, w{i}, cr{i} = True, {vin[i]}, r{i + 1}, cycle, "
                 f"cycle + q - 1, r{i}",
                 "            else:",
                 f"                clock{i}({vin[i]}, r{i + 1})"]
    body += ["        if in_valid and r0:",
             "            inputs.append(cycle)",
             "            left -= 1",
             "        cycle += 1",
             f"        if v{count - 1}:",
             "            outputs.append(cycle - 1)",
             "            if len(outputs) == wanted:",
             "                break"]
    body += [f"    if a{i}:\n        skip{i}(cycle - s{i}, sv{i}, sr{i})" for i in range(count)]  # wake everyone
    body.append("    return inputs, outputs, cycle")
    exec("\n".join(body), names)  # noqa: S102 - generated from the fixed template above, no outside text
    return names["run"]


def schedule(models: Sequence[HandshakeModel], transfers: int, cycles: int, *,
             input_valid: Callable[[int], bool] = _always, output_ready: Callable[[int], bool] = _always,
             outputs: int | None = None, skip_quiet: bool = True) -> Handshakes:
    """Steps the models, chained, from their present state (give fresh ones, in reset state) for at most `cycles`
    cycles, or until `outputs` output handshakes.

    The source offers its next transfer in every cycle where `input_valid(cycle)` holds, while any of its `transfers`
    are left; the sink is ready when `output_ready(cycle)`. With both always true (the defaults) and `skip_quiet`,
    models in a quiet span sleep through it (see HandshakeModel.quiet); the handshakes are the same either way.
    """
    chain = Chained(models)
    inputs, taken = [], []
    left = transfers
    wanted = outputs if outputs is not None else -1
    if skip_quiet and chain.models and input_valid is _always and output_ready is _always:
        inputs, taken, stepped = _compiled_lazy_run(chain.models)(transfers, cycles, wanted)
        return Handshakes(tuple(inputs), tuple(taken), stepped)
    step = _compiled_step(chain.models) if chain.models else chain.step
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
