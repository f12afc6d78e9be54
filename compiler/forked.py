"""Runs a pure-Python computation in a forked child while this process does other work.

Compiling a CNN spends its time in two independent, single-threaded halves: Amaranth's elaboration and Yosys'
Verilog writer, and the cycle analysis stepping the handshake models. A forked child inherits the design as it is
(nothing to pickle but the result), so on two cores the halves overlap. The result is the same either way; where
fork is unavailable (not POSIX), there is one core, or this process is a pool's daemonic worker, the computation
runs here when its result is asked for.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import traceback
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Forked(Generic[T]):
    """function(*args) started in a forked child; result() waits for it and returns its value or raises its error.
    The child must not touch torch or other thread pools (only the calling thread survives a fork)."""

    def __init__(self, function: Callable[..., T], *args) -> None:
        self._function, self._args = function, args
        self._process = None
        # A pool's worker is daemonic and may not start children: it runs the computation itself.
        if ("fork" in multiprocessing.get_all_start_methods() and (os.cpu_count() or 1) > 1
                and not multiprocessing.current_process().daemon):
            context = multiprocessing.get_context("fork")
            self._receive, send = context.Pipe(duplex=False)
            self._process = context.Process(target=self._run_child, args=(send,), daemon=True)
            self._process.start()
            send.close()

    def _run_child(self, send) -> None:
        try:
            outcome = (True, self._function(*self._args))
        except BaseException as error:  # sent back and raised in the parent, with the child's traceback
            outcome = (False, (error, traceback.format_exc()))
        try:
            send.send_bytes(pickle.dumps(outcome))
        except Exception as error:  # an unpicklable result or error
            send.send_bytes(pickle.dumps((False, (RuntimeError(f"unpicklable outcome: {error!r}"),
                                                  traceback.format_exc()))))

    def result(self) -> T:
        if self._process is None:
            return self._function(*self._args)
        try:
            data = self._receive.recv_bytes()
        except EOFError:
            self._process.join()
            raise RuntimeError(f"the forked {self._function.__name__} died with exit code "
                               f"{self._process.exitcode} before it returned") from None
        finally:
            self._receive.close()
        self._process.join()
        self._process = None
        ok, value = pickle.loads(data)
        if ok:
            return value
        error, child_traceback = value
        raise error from RuntimeError(f"in the forked {self._function.__name__}:\n{child_traceback}")

    def cancel(self) -> None:
        """Stops the child (the parent failed; its result is not wanted)."""
        if self._process is not None:
            self._process.kill()
            self._process.join()
            self._receive.close()
            self._process = None
