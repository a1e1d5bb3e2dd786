"""Story "alive but stuck" (seed 000), the waiting side: many tasks stuck on one thing.

Account requests arrive twice a second; each `account_request_handler` takes `accounts_lock`
briefly. At the scheduled time `nightly_reconciliation` takes the same lock and holds it while it
waits for a ledger export that takes 20 s. Every account request behind it waits on the lock:
dozens of tasks of one kind, all stuck in `Lock.acquire`, for longer and longer. When the export
finishes the lock is released and the waiting handlers drain.
"""

from __future__ import annotations

import asyncio
import itertools

from introspect.demo.metrics import track_request
from introspect.demo.runtime import StoryContext
from introspect.demo.schedule import Phase

STORY = "lock"
REQUEST_INTERVAL = 0.5
REQUEST_WORK_SECONDS = 0.02
LOCK_TAKEN = 5.0
LOCK_RELEASED = 25.0


class AccountsService:
    def __init__(self, ctx: StoryContext) -> None:
        self.ctx = ctx
        self.accounts_lock = asyncio.Lock()
        self.ledger_export_done = asyncio.Event()
        self.handled = 0
        self._request_ids = itertools.count(1)

    def start(self) -> None:
        self.ctx.spawn(account_traffic(self), "account-traffic")

    def start_reconciliation(self) -> None:
        self.ledger_export_done.clear()
        self.ctx.spawn(nightly_reconciliation(self), "nightly-reconciliation")

    def finish_ledger_export(self) -> None:
        self.ledger_export_done.set()

    def waiting_requests(self) -> int:
        waiters = getattr(self.accounts_lock, "_waiters", None)  # introspection only
        return len(waiters) if waiters else 0

    def next_request_id(self) -> int:
        return next(self._request_ids)

    def phases(self) -> list[Phase]:
        return [
            Phase(
                LOCK_TAKEN,
                STORY,
                "nightly_reconciliation holds accounts_lock; account_request_handler tasks "
                "pile up behind it",
                self.start_reconciliation,
            ),
            Phase(
                LOCK_RELEASED,
                STORY,
                "ledger export done: accounts_lock released, waiting handlers drain",
                self.finish_ledger_export,
            ),
        ]


async def account_traffic(accounts: AccountsService) -> None:
    """Incoming account requests: one handler task per request."""
    while True:
        request_id = accounts.next_request_id()
        accounts.ctx.spawn(
            account_request_handler(accounts, request_id), f"account-request-{request_id}"
        )
        await accounts.ctx.clock.sleep(REQUEST_INTERVAL)


async def account_request_handler(accounts: AccountsService, request_id: int) -> None:
    with track_request("accounts"):
        async with accounts.accounts_lock:
            await accounts.ctx.clock.sleep(REQUEST_WORK_SECONDS)
            accounts.handled += 1


async def nightly_reconciliation(accounts: AccountsService) -> None:
    """Holds the accounts lock across a slow external call: the mistake of this story."""
    async with accounts.accounts_lock:
        await wait_for_ledger_export(accounts)


async def wait_for_ledger_export(accounts: AccountsService) -> None:
    await accounts.ledger_export_done.wait()
