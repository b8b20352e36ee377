"""Natural batching: concurrent callers share one database statement.

While a batch is in flight, new submissions wait in a queue; when a slot frees, everything
queued (up to `max_size`) goes as the next batch. Under light load each item runs at
once, alone; under heavy load one statement and one commit serve many sessions. A
failed batch is retried item by item, so one bad item cannot fail its neighbours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

log = logging.getLogger("chronos.batch")


class Batcher(Generic[T, R]):
    """Runs `run(items) -> results` (same order) for batches of submitted items."""

    def __init__(
        self,
        run: Callable[[Sequence[T]], Awaitable[Sequence[R]]],
        *,
        max_size: int = 128,
        concurrency: int = 1,
        retry_alone: tuple[type[BaseException], ...] = (),
    ) -> None:
        self._run = run
        self._max = max_size
        self._slots = concurrency
        self._retry_alone = retry_alone
        self._queue: list[tuple[T, asyncio.Future[R]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._pump()
        return await future

    def _pump(self) -> None:
        while self._queue and self._slots > 0:
            batch, self._queue = self._queue[: self._max], self._queue[self._max :]
            self._slots -= 1
            task = asyncio.create_task(self._flush(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _flush(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            await self._deliver(batch)
        finally:
            self._slots += 1
            self._pump()

    async def _deliver(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = await self._run(items)
        except self._retry_alone as exc:
            if len(batch) == 1:
                _fail(batch[0][1], exc)
                return
            log.warning(
                "batch failed; retrying its items one by one",
                extra={"size": len(batch), "error": type(exc).__name__},
            )
            for pair in batch:
                await self._deliver([pair])
            return
        except BaseException as exc:
            for _, future in batch:
                _fail(future, exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)


def _fail(future: asyncio.Future[object], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
