"""A uvicorn server that stops cleanly on a signal, for `layers-mock` and
`layers-conformance proxy` alike."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import uvicorn


class SignalledServer(uvicorn.Server):
    """A uvicorn server that stops on SIGINT or SIGTERM and returns, instead of re-raising.

    uvicorn re-raises the stopping signal after shutdown, which turns a clean stop into a
    signal exit; the mock exits 0 and the proxy writes its reports first. A second signal
    forces the exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        def stop(signum: int, frame: Any) -> None:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
