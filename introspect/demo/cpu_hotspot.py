"""A CPU-heavy function on the loop: `cpu_heavy_checksum` runs in short slices (a few ms, well
under the 0.1 s block threshold) about 25 times a second, so a profiler of the loop thread ranks
it as the hottest function without the loop ever being reported as blocked. The rate is in real
time: it is steady background load, independent of `--speed`.
"""

from __future__ import annotations

import asyncio

from introspect.demo.runtime import StoryContext

SLICE_BYTES = 48 * 1024
SLICE_INTERVAL = 0.04  # real seconds


def cpu_heavy_checksum(data: bytes, seed: int = 1) -> int:
    """An Adler-like checksum in pure Python: deliberately slow."""
    low, high = seed, 0
    for byte in data:
        low = (low + byte) % 65521
        high = (high + low) % 65521
    return (high << 16) | low


class ChecksumHotspot:
    def __init__(self, ctx: StoryContext) -> None:
        self.ctx = ctx
        self.last_checksum = 0
        self.slices = 0

    def start(self) -> None:
        self.ctx.spawn(checksum_worker(self), "checksum-worker")


async def checksum_worker(hotspot: ChecksumHotspot) -> None:
    block = bytes(range(256)) * (SLICE_BYTES // 256)
    while True:
        hotspot.last_checksum = cpu_heavy_checksum(block, hotspot.last_checksum & 0xFFFF)
        hotspot.slices += 1
        await asyncio.sleep(SLICE_INTERVAL)
