"""`introspect top --prometheus URL` in a real terminal (tmux), against the fleet of conftest.py:
the ranking on screen with the killed one down and first, then Enter on a healthy local
instance attaches to its agent and shows its Tasks view, and f comes back."""

from __future__ import annotations

import os
import re
import shlex
import sys

import pytest

from tests.fleet.conftest import HEALTHY, JOB, TROUBLED, Fleet
from tests.support.procs import wait_until
from tests.tui.test_tmux_e2e import Tmux, tmux  # noqa: F401 - the fixture

ROW = re.compile(r"^\s*(\d+)\s+[\d.]+\s+\S+/(\S+)\s+(up|DOWN)\b", re.M)


@pytest.mark.timeout(240)
def test_fleet_in_a_real_terminal(fleet: Fleet, tmux: Tmux) -> None:  # noqa: F811
    env = f"INTROSPECT_RUNTIME_DIR={shlex.quote(os.environ['INTROSPECT_RUNTIME_DIR'])}"
    selector = shlex.quote(f'{{job="{JOB}"}}')
    tmux.start(f"env -u COLUMNS -u LINES {env} {shlex.quote(sys.executable)} -m introspect top "
               f"--prometheus {fleet.prom.url} --selector {selector} --refresh 2; sleep 30")
    screen = tmux.wait_for(f"Fleet: {HEALTHY + len(TROUBLED)} instances", "refresh every 2s",
                           "DOWN", timeout=60)

    def ranked() -> list[tuple[int, str, str]] | None:
        rows = [(int(n), fleet.names.get(inst, inst), state)
                for n, inst, state in ROW.findall(tmux.screen())]
        return rows if rows and rows[0][1] == "doomed" else None

    rows = wait_until(ranked, timeout=120, interval=0.5,
                      message=f"the killed instance ranked first\n{screen}")
    assert rows[0][2] == "DOWN"
    healthy_row = next(n for n, name, _ in rows if name.startswith("healthy"))
    tmux.keys(*["Down"] * (healthy_row - 1))
    tmux.keys("Enter")
    # Healthy instances score alike, so a refresh between reading the screen and Enter may
    # reorder them: any healthy one is the right landing, its pid in the header.
    healthy = {fleet.pid(name) for _, name, _ in rows if name.startswith("healthy")}
    screen = tmux.wait_for("● live", "idle_worker", timeout=30)
    attached = re.search(r"\bpid (\d+)\b", screen)
    assert attached is not None and int(attached.group(1)) in healthy, screen
    tmux.keys("f")
    tmux.wait_for("Fleet: ", "Enter: attach")
    tmux.keys("q")
    wait_until(lambda: "Fleet: " not in tmux.screen(), message="top to quit")
