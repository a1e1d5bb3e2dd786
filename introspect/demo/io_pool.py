"""Thread pool doing blocking I/O: the loop hands file reads to `ThreadPoolExecutor(max_workers=4,
thread_name_prefix="demo-io")` (threads `demo-io_0` .. `demo-io_3`). Normally one short read
every half demo second; during the scheduled burst 24 reads of 0.5 s each are queued at once,
so the pool is saturated (4 running, up to 20 waiting in its work queue) for about 3 real seconds.
Read durations are real seconds, like the blocking calls.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

from introspect.demo.metrics import track_request
from introspect.demo.runtime import StoryContext
from introspect.demo.schedule import Phase

STORY = "io"
EXECUTOR_PREFIX = "demo-io"
EXECUTOR_WORKERS = 4
READ_INTERVAL = 0.5
READ_SECONDS = 0.05
BURST_READS = 24
BURST_READ_SECONDS = 0.5
BURST_AT = 40.0


def read_media_file(path: str, seconds: float) -> int:
    """Blocking file read, run on a pool thread (`time.sleep` stands in for the disk)."""
    time.sleep(seconds)
    return len(path)


class IoPool:
    def __init__(self, ctx: StoryContext) -> None:
        self.ctx = ctx
        self.executor: ThreadPoolExecutor | None = None
        self.reads = 0

    def start(self) -> None:
        self.executor = ThreadPoolExecutor(
            max_workers=EXECUTOR_WORKERS, thread_name_prefix=EXECUTOR_PREFIX
        )
        self.ctx.spawn(media_file_reader(self), "media-file-reader")

    def shutdown(self) -> None:
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)

    def queued_jobs(self) -> int:
        return self.executor._work_queue.qsize() if self.executor else 0  # introspection only

    def start_burst(self) -> None:
        self.ctx.spawn(thumbnail_burst(self), "thumbnail-burst")

    async def read(self, path: str, seconds: float) -> int:
        loop = asyncio.get_running_loop()
        with track_request("media"):
            size = await loop.run_in_executor(self.executor, read_media_file, path, seconds)
        self.reads += 1
        return size

    def phases(self) -> list[Phase]:
        return [
            Phase(
                BURST_AT,
                STORY,
                "burst of 24 blocking reads on the demo-io pool (4 workers): executor saturated",
                self.start_burst,
            )
        ]


async def media_file_reader(io: IoPool) -> None:
    file_number = 0
    while True:
        file_number += 1
        await io.read(f"/media/clip-{file_number}.mp4", READ_SECONDS)
        await io.ctx.clock.sleep(READ_INTERVAL)


async def thumbnail_burst(io: IoPool) -> None:
    await asyncio.gather(*(read_thumbnail(io, n) for n in range(BURST_READS)))


async def read_thumbnail(io: IoPool, number: int) -> int:
    """One of the burst's reads (gather runs each as a task of this kind)."""
    return await io.read(f"/media/thumbnails/{number}.jpg", BURST_READ_SECONDS)
