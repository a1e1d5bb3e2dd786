"""The card and place helpers on their own: hostile text stays inert, `file:line` survives
any width, the app's frames are told from the stdlib's and site-packages'."""

from __future__ import annotations

from introspect.eventtext import card_text, event_card, group_errors, is_user_file
from introspect.protocol.snapshot import BlockingEvent, ErrorReport, Frame, TaskRef
from introspect.textfmt import fit_location


def test_fit_location_keeps_file_and_line_at_every_width() -> None:
    place = "/srv/app/demo/accounts.py:81 account_request_handler"
    for width in range(12, 60):
        text = fit_location(place, width)
        assert len(text) <= width and "s.py:81" in text, (width, text)
    assert fit_location("app.py:3 main", 40) == "app.py:3 main"


def test_user_frames_are_told_apart() -> None:
    assert is_user_file("/srv/app/war_room.py")
    for lib in ("/usr/lib/python3.11/asyncio/events.py", "/venv/lib/python3.12/site-packages/x.py",
                "<frozen runpy>", "<call>", ""):
        assert not is_user_file(lib), lib


def test_a_hostile_event_prints_inert_text() -> None:
    evil = "\x1b[31mred\x1b[0m\n[bold]x[/bold]"
    event = BlockingEvent(
        time=1000.0, duration=1.5, ongoing=False, task=TaskRef(id=1, name=evil, kind=evil),
        callback=None, stack=[Frame(function=evil, file="/app/x.py", line=3)],
        location=f"/app/x.py:3 {evil}", culprit=evil, single_step=True, threshold=0.1,
        exact=True, loop_thread_cpu_share=None)
    text = card_text(event_card(event), now=1002.0)
    assert "\x1b" not in text and "\\x1b[31m" in text
    assert text.splitlines()[0].startswith("BLOCKED: loop blocked 1.50s by ")


def test_identical_errors_group_with_first_and_last_seen() -> None:
    def err(t: float, message: str = "boom") -> ErrorReport:
        return ErrorReport(time=t, source="task", type="TypeError", message=message,
                           where="/app/x.py:3 f")

    groups = group_errors([err(3), err(1), err(2), err(5, "other")])
    assert [(g.count, g.first, g.last) for g in groups] == [(1, 5, 5), (3, 1, 3)]
