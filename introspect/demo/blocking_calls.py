"""Story "the VM was running but the app could not query the database" (seed 000).

Report requests query the database once a second through the async driver. During the scheduled
phase a config change sends them to the legacy synchronous driver: `sync_db_query` calls
`time.sleep` on the event loop's thread, blocking the whole loop for 0.3 s at a time (at most
every 3 demo seconds, and never more often than every 0.5 real seconds, whatever the speed).
Once per cycle `slow_report_handler` runs a 1.5 s synchronous query. Block lengths are real
seconds at every `--speed`, so they always exceed the agent's 0.1 s threshold.
"""

from __future__ import annotations

import asyncio
import itertools
import time

from introspect.demo.metrics import track_request
from introspect.demo.runtime import StoryContext
from introspect.demo.schedule import Phase

STORY = "db"
REPORT_INTERVAL = 1.0
ASYNC_QUERY_SECONDS = 0.05
SHORT_BLOCK_SECONDS = 0.3  # real seconds
LONG_BLOCK_SECONDS = 1.5  # real seconds
SHORT_BLOCK_EVERY = 3.0  # demo seconds
SHORT_BLOCK_MIN_GAP = 0.5  # real seconds, so high speeds do not block the loop all the time
SYNC_DRIVER_ON = 35.0
LONG_BLOCK_AT = 45.0
SYNC_DRIVER_OFF = 48.0


def sync_db_query(sql: str, seconds: float) -> list[tuple[int, str]]:
    """The legacy synchronous driver: waits for the database on the calling thread."""
    time.sleep(seconds)  # stands in for a blocking socket read
    return [(1, sql)]


async def async_db_query(db: ReportsDatabase, sql: str) -> list[tuple[int, str]]:
    await db.ctx.clock.sleep(ASYNC_QUERY_SECONDS)
    return [(1, sql)]


class ReportsDatabase:
    def __init__(self, ctx: StoryContext) -> None:
        self.ctx = ctx
        self.sync_driver = False
        self.blocks = 0
        self._last_block = float("-inf")
        self._report_ids = itertools.count(1)

    def start(self) -> None:
        self.ctx.spawn(report_traffic(self), "report-traffic")

    def use_sync_driver(self) -> None:
        self.sync_driver = True

    def use_async_driver(self) -> None:
        self.sync_driver = False

    def start_slow_report(self) -> None:
        self.ctx.spawn(slow_report_handler(self), "slow-report")

    def may_block_now(self) -> bool:
        """Rate-limits the short blocks: every SHORT_BLOCK_EVERY demo seconds at most."""
        now = asyncio.get_running_loop().time()
        gap = max(self.ctx.clock.scaled(SHORT_BLOCK_EVERY), SHORT_BLOCK_MIN_GAP)
        if now - self._last_block < gap:
            return False
        self._last_block = now
        return True

    def next_report_id(self) -> int:
        return next(self._report_ids)

    def phases(self) -> list[Phase]:
        return [
            Phase(
                SYNC_DRIVER_ON,
                STORY,
                "report handlers switch to sync_db_query on the loop thread (0.3 s blocks)",
                self.use_sync_driver,
            ),
            Phase(
                LONG_BLOCK_AT,
                STORY,
                "slow_report_handler runs a 1.5 s sync_db_query: the loop is blocked",
                self.start_slow_report,
            ),
            Phase(
                SYNC_DRIVER_OFF,
                STORY,
                "report handlers back on the async driver",
                self.use_async_driver,
            ),
        ]


async def report_traffic(db: ReportsDatabase) -> None:
    while True:
        report_id = db.next_report_id()
        db.ctx.spawn(report_request_handler(db, report_id), f"report-request-{report_id}")
        await db.ctx.clock.sleep(REPORT_INTERVAL)


async def report_request_handler(db: ReportsDatabase, report_id: int) -> None:
    sql = f"SELECT * FROM reports WHERE id = {report_id}"
    with track_request("reports"):
        if db.sync_driver and db.may_block_now():
            db.blocks += 1
            sync_db_query(sql, SHORT_BLOCK_SECONDS)
        else:
            await async_db_query(db, sql)


async def slow_report_handler(db: ReportsDatabase) -> None:
    with track_request("reports"):
        db.blocks += 1
        sql = "SELECT account, sum(amount) FROM ledger GROUP BY account"
        sync_db_query(sql, LONG_BLOCK_SECONDS)
