"""The supervisor of `--workers N`: uvicorn's, bounded and stoppable while it starts workers.

uvicorn's `Multiprocess` starts every worker before it looks at a signal: `--workers 100000`
spawned 849 processes until the machine ran out of memory, and a SIGTERM meanwhile waited for
all of them. Here the count is bounded at parse time (`config.MAX_WORKERS`), a SIGINT or
SIGTERM stops the starting at once (the workers started so far are terminated and joined), and
SIGTTIN cannot grow the set past the bound either.
"""

from __future__ import annotations

import logging
import signal

from uvicorn.supervisors.multiprocess import Multiprocess, Process

from layers_kit.mock.config import MAX_WORKERS

log = logging.getLogger("layers.mock")
_STOP = (signal.SIGINT, signal.SIGTERM)


def catch_early_signals() -> list[int]:
    """From now until a server installs its own handlers, a SIGINT or SIGTERM is noted in the
    returned list instead of killing the process: the supervisor acts on it (exit 0), where
    a signal between the banner and the workers' start used to end the mock by the signal."""
    caught: list[int] = []
    for sig in _STOP:
        signal.signal(sig, lambda signum, frame: caught.append(signum))
    return caught


class BoundedMultiprocess(Multiprocess):
    def __init__(self, *args, early: list[int] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.signal_queue.extend(early or ())

    def _stop_asked(self) -> bool:
        if any(sig in _STOP for sig in self.signal_queue):
            self.should_exit.set()
        return self.should_exit.is_set()

    def init_processes(self) -> None:
        for _ in range(min(self.processes_num, MAX_WORKERS)):
            if self._stop_asked():  # stopped while starting: start no more
                return
            process = Process(self.config, self.sockets)
            process.start()
            self.processes.append(process)

    def handle_ttin(self) -> None:
        if self.processes_num >= MAX_WORKERS:
            log.warning("SIGTTIN: already %d workers, the most on this machine", MAX_WORKERS)
            return
        super().handle_ttin()
