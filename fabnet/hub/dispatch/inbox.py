"""The dispatcher's one worker thread and its queue: bus handlers, the scheduler and the API
only put items in; the worker takes out everything waiting (up to a batch) and hands the batch
to one function, so task events that arrived together are applied in one transaction."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fabnet.bus import messages as msg
from fabnet.bus.client import DeliveryTag
from fabnet.bus.topics import Topic

log = logging.getLogger(__name__)

Work = Callable[[], None]
DEFAULT_MAX_BATCH = 200  # items per drain: bounds one transaction's size and a batch's latency


@dataclass(frozen=True)
class Incoming:
    """A message from the bus; ``tag`` (None when not manually acked) is acked once done."""

    topic: Topic
    message: msg.Message
    tag: DeliveryTag | None = None


T = TypeVar("T")


class Inbox(Generic[T]):
    """A FIFO of items drained in batches by one thread, ``process(batch)`` per drain."""

    def __init__(
        self, process: Callable[[list[T]], None], max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        self._process = process
        self._max = max_batch
        self._queue: queue.Queue[T | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="hub-dispatch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Finish what is queued, then end the thread."""
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s)

    def put(self, item: T) -> None:
        self._queue.put(item)

    def on_worker(self) -> bool:
        """True when called from the worker thread itself."""
        return threading.current_thread() is self._thread

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch: list[T] = [first]
            end = False
            while len(batch) < self._max:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    end = True
                    break
                batch.append(item)
            try:
                self._process(batch)
            except Exception:  # noqa: BLE001 - the top of a worker loop: log and go on
                log.exception("dispatcher batch of %d items failed", len(batch))
            if end:
                return
