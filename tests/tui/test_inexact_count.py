"""A filtered page over many tasks may carry a lower bound (`matched_exact=False`: the agent
stopped counting once the page was full): the Tasks view shows it as `≥N`, and paging on
still asks the agent for the next pages."""

from __future__ import annotations

from introspect.protocol import messages as m
from introspect.protocol.snapshot import TaskRow
from introspect.recording import read_recording
from introspect.tui.app import IntrospectApp
from introspect.tui.views.tasks import PAGE_SIZE, TasksView
from tests.tui.support import RECORDING, fixture_process, poll, poll_text, run, screen_text

BULK = 20_000  # the agent counts matches for ~20 ms once the page is full: far fewer than this


def test_lower_bound_shown_and_paging_goes_on_live() -> None:
    with fixture_process(bulk=BULK) as proc:
        proc.wait_for_line("ready", timeout=60)
        with proc.client() as client:
            truth = client.tasks(text="bulk-", limit=PAGE_SIZE)
        assert not truth.matched_exact and PAGE_SIZE <= truth.matched < BULK

        async def scenario() -> None:
            app = IntrospectApp(target=str(proc.pid), interval=1.0, initial_view="tasks")
            async with app.run_test(size=(140, 40)) as pilot:
                view = app.query_one(TasksView)
                await poll(pilot, lambda: view.page is not None, "the first page")
                await pilot.press("slash", *"bulk-", "enter")
                page = await poll(pilot, lambda: view.page and view.text == "bulk-" and
                                  view.page.tasks[0].name.startswith("bulk-") and
                                  not view.page.matched_exact and view.page, "an inexact page")
                await poll_text(pilot, f"1–{PAGE_SIZE} of ≥")
                await poll(pilot, lambda: f"of ≥{view.page.matched:,} matching"
                           in screen_text(app), "the lower bound of the page shown")
                assert page.matched < BULK
                await pilot.press("n")
                await poll(pilot, lambda: view.page.offset == PAGE_SIZE, "the second page")
                await poll_text(pilot, f"{PAGE_SIZE + 1}–{2 * PAGE_SIZE} of ")
                assert all(t.name.startswith("bulk-") for t in view.page.tasks)
                assert len(view.page.tasks) == PAGE_SIZE

        run(scenario())


class LowerBoundSource:
    """Pages as the agent answers a filter over many tasks when its counting budget is spent
    right after the page: `matched` is exactly the end of the page, a lower bound."""

    live = True

    def __init__(self) -> None:
        self.asked: list[m.TaskListRequest] = []

    async def tasks(self, req: m.TaskListRequest) -> m.TaskPage:
        self.asked.append(req)
        rows = [TaskRow(id=i, name=f"job-{i}", kind="app.job", state="waiting",
                        age_seconds=1.0, location="app.py:1 job", awaiting="sleep")
                for i in range(req.offset, req.offset + req.limit)]
        return m.TaskPage(total=100_000, matched=req.offset + req.limit, offset=req.offset,
                          tasks=rows, matched_exact=False)


def test_lower_bound_equal_to_the_page_end_still_pages_on() -> None:
    async def scenario() -> None:
        recording = read_recording(RECORDING)
        app = IntrospectApp(recording=recording, replay_start=len(recording.updates) - 1,
                            replay_playing=False, initial_view="system")
        async with app.run_test(size=(120, 30)) as pilot:
            source = LowerBoundSource()
            app.source = source  # type: ignore[assignment]
            await pilot.press("3")
            await poll_text(pilot, f"1–{PAGE_SIZE} of ≥{PAGE_SIZE} matching (100000 live)")
            await pilot.press("n")
            await poll_text(pilot, f"{PAGE_SIZE + 1}–{2 * PAGE_SIZE} of ≥{2 * PAGE_SIZE} "
                            "matching")
            assert source.asked[-1].offset == PAGE_SIZE
            await pilot.press("N")
            await poll_text(pilot, f"1–{PAGE_SIZE} of ≥{PAGE_SIZE} matching")
            assert source.asked[-1].offset == 0

    run(scenario())
