"""`introspect ps --prometheus-sd FILE`: the file_sd targets of every /metrics endpoint on the
host, written atomically; a bad destination is one clear line and exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.deploy.support import BIN
from tests.support.procs import AgentProcess

APP = r'''
import asyncio
print("ready", flush=True)
asyncio.run(asyncio.sleep(60))
'''


def _ps(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "introspect"), "ps", *args], capture_output=True,
                          text=True, timeout=30)


def test_file_sd_lists_the_agent_with_its_pid(tmp_path: Path) -> None:
    with AgentProcess.script(APP, agent_args=["--metrics-port", "0"]) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        [entry] = [a for a in json.loads(_ps("--json").stdout) if a["pid"] == proc.pid]
        target = tmp_path / "introspect.json"
        result = _ps("--prometheus-sd", str(target))
        assert result.returncode == 0, result.stderr
        groups = json.loads(target.read_text())
        [mine] = [g for g in groups if g["labels"]["pid"] == str(proc.pid)]
        port = entry["metrics"].rsplit(":", 1)[1].split("/")[0]
        assert mine["targets"] == [f"127.0.0.1:{port}"]
        assert mine["labels"]["__meta_introspect_role"] == "main"
        assert mine["labels"]["__meta_introspect_program"].startswith("app")
        assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left over


def test_file_sd_into_a_missing_directory_is_one_clear_error(tmp_path: Path) -> None:
    result = _ps("--prometheus-sd", str(tmp_path / "nope" / "x.json"))
    assert result.returncode == 2
    assert result.stderr.startswith("introspect: error: --prometheus-sd: no such directory")
    assert "Traceback" not in result.stderr
