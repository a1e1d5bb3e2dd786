"""The demo service: the stories of introspect's users, reproduced on a schedule.

Run it with `python -m introspect.demo` (no agent needed) or observed with
`introspect run -- python -m introspect.demo`. See README.md in this folder for the timeline and
the exact names of its tasks, queues, threads, executor and metrics.
"""

from introspect.demo.command_line import main
from introspect.demo.service import (
    DemoService,
    console_locals,
    current,
    restart_comments_workers,
    run_demo,
)

__all__ = [
    "DemoService",
    "console_locals",
    "current",
    "main",
    "restart_comments_workers",
    "run_demo",
]
