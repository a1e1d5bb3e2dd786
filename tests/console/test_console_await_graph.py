"""The console's await-graph helpers against a program that knows what awaits what:
`pstree()` draws the same forest as `introspect dump`, `awaits(t)` names both directions."""

from __future__ import annotations

import re

from tests.console.support import run_piped
from tests.support.await_program import await_process


def test_pstree_and_awaits_from_the_console() -> None:
    with await_process(pool=40, sessions=2, INTROSPECT_CONSOLE="1") as proc:
        proc.wait_for_agent()
        proc.wait_for_line("ready")
        done = run_piped(str(proc.pid), "pstree()\n"
                         "g = [t for t in asyncio.all_tasks() if t.get_name() == 'grouper'][0]\n"
                         "awaits(g)\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    lines = out.splitlines()
    main = next(i for i, ln in enumerate(lines) if " main [__main__.main]" in ln)
    assert " fetcher [" in lines[main + 1] and lines[main + 1].lstrip().startswith("|- gather")
    assert "`- task > Task " in lines[main + 2] and " fetched [" in lines[main + 2]
    assert "taskgroup > 2 tasks [__main__.leaf] waiting, same subtree: grouped-1, grouped-2" \
        in lines[main + 4]
    assert "`- gather > 40 tasks [__main__.leaf] waiting, same subtree: pooled-0" in out
    assert re.search(r"awaits +\d+ +grouped-1 \[__main__\.leaf\] via taskgroup", out), out
    assert re.search(r"awaited by +\d+ +main \[__main__\.main\] via gather", out), out
