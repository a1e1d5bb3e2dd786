"""The audit trail is private and complete: the file is born 0600 and never written through a
symlink or into another user's file, and a console line is logged whole however long it is
(code after character 300 used to run unlogged)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.support import audit_lines, run_piped
from tests.support.procs import AgentProcess, wait_until

APP = """
import asyncio, os, introspect
os.umask(0o022)  # the usual umask: a plain open() would make the file 0644
introspect.start(console=True)
async def main():
    print("ready", flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory both users can write to (like /tmp)."""
    path = Path(tempfile.mkdtemp(prefix="introspect-test-audit-"))
    os.chmod(path, 0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_app(audit: Path) -> AgentProcess:
    proc = AgentProcess.script(APP, under_run=False, env={"INTROSPECT_AUDIT_LOG": str(audit)})
    proc.wait_for_line("ready")
    proc.wait_for_agent()
    return proc


def console(proc: AgentProcess, text: str) -> str:
    out = run_piped(str(proc.pid), text)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_the_audit_file_is_born_private(tmp_path):
    audit = tmp_path / "audit.log"
    with start_app(audit) as proc:
        console(proc, "1 + 1\n")
        wait_until(lambda: audit.exists() and audit_lines(audit), message="audit lines")
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600


def test_a_planted_symlink_is_not_written_through(shared_dir, as_other):
    os.chmod(shared_dir, 0o777)  # no sticky bit: the kernel's own protections don't apply
    victim = shared_dir / "victim.txt"  # a file of ours the other user points at
    victim.write_text("precious\n")
    audit = shared_dir / "audit.log"
    as_other(lambda say: (os.symlink(victim, audit), say("planted"))).wait_for("planted")
    with start_app(audit) as proc:
        assert "6" in console(proc, "print(2 * 3)\n")  # the agent carries on
        console(proc, "print(3 * 3)\n")
        notes = [ln for ln in proc.stderr if "audit log" in ln]
        assert len(notes) == 1 and "symlink" in notes[0], proc.stderr  # said once
    assert victim.read_text() == "precious\n"


def test_a_file_of_another_user_is_not_written(shared_dir, as_other):
    audit = shared_dir / "audit.log"

    def create(say):
        fd = os.open(audit, os.O_WRONLY | os.O_CREAT, 0o666)
        os.fchmod(fd, 0o666)  # they could read whatever we wrote
        os.close(fd)
        say("created")

    as_other(create).wait_for("created")
    with start_app(audit) as proc:
        console(proc, "1 + 1\n")
        wait_until(lambda: any("audit log" in ln for ln in proc.stderr),
                   message="the refusal said on stderr")
        assert "belongs to uid" in next(ln for ln in proc.stderr if "audit log" in ln)
    assert audit.read_text() == ""


def test_a_long_console_line_is_audited_whole(tmp_path):
    audit = tmp_path / "audit.log"
    padding = "x = " + repr("p" * 700)
    line = f"{padding}; print('the tail ran', 'past the cut at 300')"
    with start_app(audit) as proc:
        assert "the tail ran past the cut at 300" in console(proc, line + "\n")
        wait_until(lambda: any(e.get("part", "").startswith("3/3") for e in audit_lines(audit)),
                   message="the last chunk of the long line")
    chunks = [e for e in audit_lines(audit) if e["action"] == "console_input" and "part" in e]
    assert [c["part"] for c in chunks] == [f"{i}/{len(chunks)}" for i in range(1, len(chunks) + 1)]
    whole = "".join(c["line"] for c in chunks)
    assert whole == line  # nothing cut, nothing missing
    digest = hashlib.sha256(line.encode()).hexdigest()
    assert {c["sha256"] for c in chunks} == {digest} and chunks[0]["chars"] == len(line)
    assert all(len(json.dumps(c)) < 1000 for c in chunks)  # each audit line stays bounded
