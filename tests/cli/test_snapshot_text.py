"""`introspect snapshot` text and the headless demo report against a real program that blocks
its loop in `time.sleep` and crashes the same way again and again: events read as incident
cards, identical errors print once with a count, nothing prints as a Python repr."""

from __future__ import annotations

import json

from introspect.cli.headless_report import Reporter
from introspect.protocol.snapshot import BlockingEvent, Snapshot
from tests.cli.support import introspect_cli
from tests.support.procs import AgentProcess, wait_until

BLOCKS_AND_CRASHES = """
    import asyncio, time

    def sync_db_query():
        time.sleep(0.4)  # the legacy driver, on the loop's thread

    async def crash():
        raise TypeError("unsupported operand")

    async def main():
        print("ready", flush=True)
        while True:
            task = asyncio.create_task(crash())
            await asyncio.wait([task])
            task.exception()
            sync_db_query()
            await asyncio.sleep(0.2)

    asyncio.run(main())
"""

REPRS = ("{'", "[{", "Frame(", "TaskRef(")


def test_snapshot_text_prints_cards_and_grouped_errors() -> None:
    with AgentProcess.script(BLOCKS_AND_CRASHES) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()

        def incident() -> dict | None:
            done = introspect_cli("snapshot", str(proc.pid), "--json")
            data = json.loads(done.stdout) if done.returncode == 0 else None
            ok = data and any(e["kind"] == "blocking" and not e["ongoing"]
                              for e in data["events"]) and len(data["errors"]["recent"]) >= 3
            return data if ok else None

        wait_until(incident, timeout=30, message="a finished block and 3 crash reports")
        done = introspect_cli("snapshot", str(proc.pid))
        assert done.returncode == 0, done.stderr
        text = done.stdout
        assert "BLOCKED: loop blocked" in text
        card = text[text.index("BLOCKED: loop blocked"):]
        headline = card.splitlines()[0]
        assert "in sync_db_query app.py:" in headline and headline.endswith("→ time.sleep")
        assert "stack (innermost last; * = your code)" in card
        stack = card.splitlines()
        first = next(i for i, line in enumerate(stack) if line.strip().startswith("stack"))
        frames = [line for line in stack[first + 1:] if line.startswith("    ")]
        assert frames[-1].strip().startswith("→ time.sleep")
        assert frames[-2].strip().startswith("* sync_db_query")  # the app's frame, marked
        assert any("LINT " in line for line in text.splitlines())
        # identical crashes: one line with a count, not one line each
        errors = text[text.index("ERRORS"):]
        assert errors.count("TypeError: unsupported operand") == 1
        assert "× first" in errors
        for repr_mark in REPRS:
            assert repr_mark not in text


def test_headless_report_names_what_fired() -> None:
    with AgentProcess.script(BLOCKS_AND_CRASHES) as proc:
        proc.wait_for_line("ready")
        with proc.client() as client:
            def finished_block() -> Snapshot | None:
                snap = client.snapshot()
                done = any(isinstance(e, BlockingEvent) and not e.ongoing for e in snap.events)
                return snap if done else None

            snap = wait_until(finished_block, timeout=30, message="a finished block")
        report = Reporter().report(snap, 1.0)
        assert "BLOCKED: loop blocked" in report and "→ time.sleep" in report
        assert "LINT " in report
        for repr_mark in REPRS:
            assert repr_mark not in report
