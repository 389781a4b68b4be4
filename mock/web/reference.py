"""`/reference`: the contract's offline reference page (D12), built at most once at a time.

It needs no key, so anyone can ask for it, and its first request may build it with Redocly
(a node process, 100+ MiB, 2-4 s). Six concurrent first requests started six builds (719 MiB)
and three answered 500 (they shared a temporary file); a failing build ran again on every
request; an unusable cache folder was a 500. Here, per process:
- one build at a time: every request meanwhile waits for that build (at most `WAIT` seconds,
  then 503 with Retry-After);
- the built page is kept in memory (and in the cache folder, written under a unique temporary
  name and renamed into place, by `contract.page`);
- a failed build is remembered with its reason for `FAILURE_MEMORY` seconds: requests meanwhile
  get 503 with that reason and a Retry-After of the time left, and start nothing;
- a cache folder that cannot be used (not a folder, not writable) is left aside: the page is
  built in a temporary folder and served from memory.
"""

from __future__ import annotations

import asyncio
import logging
import math
import tempfile
import time
from pathlib import Path

from starlette.responses import Response

from layers_kit.contract import spec

log = logging.getLogger("layers.mock")
FAILURE_MEMORY = 60.0  # seconds a failed build is remembered (and not run again)
WAIT = 30.0  # seconds a request waits for the build in progress


def _load(spec_file: Path) -> bytes:
    from layers_kit.contract import page  # the publishing package: imported when asked for

    try:
        return page.page_for(spec_file)
    except OSError as exc:  # the cache folder cannot be used: build without it
        log.warning("reference page: cache folder unusable (%s); building in a temporary "
                    "folder", exc)
        with tempfile.TemporaryDirectory(prefix="layers-page-") as tmp:
            return page.build(spec_file, Path(tmp) / "reference.html").read_bytes()


def _unavailable(reason: str, retry_after: float) -> Response:
    return Response(f"The reference page is not available: {reason}. Swagger UI is at /docs.\n",
                    status_code=503, media_type="text/plain",
                    headers={"Retry-After": str(max(1, math.ceil(retry_after)))})


class ReferencePage:
    def __init__(self, spec_file: Path | None = None) -> None:
        self.spec_file = spec_file or spec.spec_path()
        self._page: bytes | None = None
        self._building: asyncio.Future | None = None
        self._failed: tuple[float, str] | None = None  # (monotonic until, reason)
        self.builds = 0  # builds started by this process (tests read it)

    def _done(self, future: asyncio.Future) -> None:
        self._building = None
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None:
            self._page = future.result()
            self._failed = None
        else:
            reason = str(exc).strip().splitlines()[-1][:300] if str(exc).strip() else \
                type(exc).__name__
            self._failed = (time.monotonic() + FAILURE_MEMORY, reason)

    async def response(self) -> Response:
        if self._page is not None:
            return Response(self._page, media_type="text/html; charset=utf-8")
        if self._failed is not None:
            until, reason = self._failed
            left = until - time.monotonic()
            if left > 0:
                return _unavailable(reason, left)
        if self._building is None:
            self.builds += 1
            self._building = asyncio.ensure_future(asyncio.to_thread(_load, self.spec_file))
            self._building.add_done_callback(self._done)
        building = self._building
        try:
            body = await asyncio.wait_for(asyncio.shield(building), WAIT)
        except TimeoutError:
            return _unavailable("it is being built; retry shortly", 5)
        except Exception:  # the build failed: its reason, remembered by _done
            _, reason = self._failed or (0.0, "the build failed")
            return _unavailable(reason, FAILURE_MEMORY)
        return Response(body, media_type="text/html; charset=utf-8")
