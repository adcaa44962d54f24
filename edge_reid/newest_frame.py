"""A live source read in its own thread, handing out only the newest frame.

A camera or stream delivers frames at its own rate whether or not the loop keeps up. Read in
order, the frames the loop had no time for wait in the capture's buffers: a camera driver keeps a
few (what the loop sees is that many frames old), a network stream's decoder keeps them all (the
delay grows without bound), and a timestamp taken when a frame is read no longer says when it was
captured, so the tracker's clock runs wrong. Here the source is read continuously in a thread of
its own and each request gets the newest frame read; the ones in between are dropped and counted.
GStreamer's ``appsink drop=true max-buffers=1`` does the same for a pipeline.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, Iterator, TypeVar

Item = TypeVar("Item")

#: Seconds between checks of ``stopped`` while waiting for a frame (a stop is seen this soon).
POLL_S = 0.1


class NewestFrameReader(Generic[Item]):
    """Runs ``read()`` in a daemon thread; iterating yields only the newest item it produced.

    Args:
        read: called once in the thread; yields items (e.g. ``(timestamp_s, image)``) as the
            source delivers them, and returns when the source ends.
        stopped: polled while waiting; True ends the iteration (the thread is asked to end
            through whatever ``read`` itself checks).
        name: the thread's name.

    Attributes:
        dropped: items replaced by a newer one before anyone took them.

    Iterating re-raises an exception ``read`` raised, after the items taken before it. Iterate
    once: a second iteration finds the thread finished.
    """

    def __init__(self, read: Callable[[], Iterator[Item]], stopped: Callable[[], bool], name: str = "edge-reid-live-reader") -> None:
        self._read = read
        self._stopped = stopped
        self._condition = threading.Condition()
        self._newest: tuple[Item] | None = None  # a 1-tuple, so that None can be an item
        self._finished = False
        self._error: BaseException | None = None
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        error = None
        try:
            for item in self._read():
                with self._condition:
                    if self._newest is not None:
                        self.dropped += 1
                    self._newest = (item,)
                    self._condition.notify_all()
        except BaseException as exc:  # handed to the consumer, raised there
            error = exc
        finally:
            with self._condition:
                self._finished, self._error = True, error
                self._condition.notify_all()

    def __iter__(self) -> Iterator[Item]:
        if self._thread.ident is None:  # not started yet (a second iteration finds it finished)
            self._thread.start()
        while True:
            with self._condition:
                if self._newest is None and not self._finished:
                    self._condition.wait(POLL_S)
                newest, self._newest = self._newest, None
                finished, error = self._finished, self._error
            if newest is not None:
                yield newest[0]
                continue
            if finished:
                if error is not None:
                    raise error
                return
            if self._stopped():
                return

    def join(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` seconds for the thread to end; True when it has (or never started)."""
        if self._thread.ident is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()
