"""The classifier, fed with py-spy 0.4.3's real stderr texts (captured on this kind of machine,
with and without RUST_BACKTRACE; see pyspy_stderr/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from introspect.profiling import diagnose

CAPTURED = Path(__file__).parent / "pyspy_stderr"
PID = 4242

EXPECTED = {
    "no_such_process": f"no process with PID {PID} (it may have exited)",
    "not_python": f"PID {PID} does not look like a Python process",
    "permission": f"permission denied attaching to PID {PID}: py-spy needs ptrace rights",
    "suspend_failed": f"py-spy could not pause PID {PID}",
    "no_stack_counts": f"no samples collected from PID {PID}",
    "native_nonblocking": "native frames need a paused process",
    "racing_exec": f"py-spy failed on PID {PID}: Bad address (os error 14)",
}


def _captured() -> list[Path]:
    files = sorted(CAPTURED.glob("*.txt"))
    assert len(files) >= 10
    return files


@pytest.mark.parametrize("path", _captured(), ids=lambda p: p.stem)
def test_captured_texts_are_classified(path: Path) -> None:
    kind = path.name.split(".")[0]
    err = diagnose.classify(path.read_text(), PID, returncode=1, pid_exists=True)
    msg = str(err)
    assert msg.startswith(EXPECTED[kind]), msg
    assert "\n" not in msg and "Stack backtrace" not in msg and "anyhow" not in msg


def test_every_kind_has_a_captured_sample() -> None:
    kinds = {p.name.split(".")[0] for p in _captured()}
    assert kinds == set(EXPECTED)


def test_vanished_pid_wins_over_a_vague_text() -> None:
    err = diagnose.classify("Error: Bad address (os error 14)", PID, pid_exists=False)
    assert str(err) == f"no process with PID {PID} (it may have exited)"


def test_unknown_text_keeps_pyspy_headline_escaped() -> None:
    err = diagnose.classify("warning\nError: weird \x1b[2J thing\nCaused by:\n  x", PID,
                            returncode=3, pid_exists=True)
    assert str(err) == f"py-spy failed on PID {PID}: weird \\x1b[2J thing"
    assert str(diagnose.classify("", PID, returncode=3)) == \
        f"py-spy failed on PID {PID}: exit status 3"


def test_unsupported_python_version() -> None:
    err = diagnose.classify("Error: Unsupported version of Python: 3.99.0", PID)
    assert "does not support the Python version" in str(err)
    assert "3.99.0" in str(err)


def test_docker_hint_text_is_a_permission_error() -> None:
    # py-spy's permission_denied() adds this line inside docker (text from the 0.4.3 binary).
    text = ("Permission Denied: Try running again with elevated permissions by going "
            "'sudo env \"PATH=$PATH\" !!'\nIt looks like you are running in a docker container. "
            "Please make sure you started your container with the SYS_PTRACE capability. See "
            "https://github.com/benfred/py-spy#how-do-i-run-py-spy-in-docker for more details")
    assert str(diagnose.classify(text, PID)).startswith("permission denied attaching")


@pytest.mark.parametrize(("scope", "euid", "cap", "expect", "absent"), [
    (None, 1000, False, "run as the process's owner or root", "ptrace_scope"),
    (1, 1000, False, "echo 0 > /proc/sys/kernel/yama/ptrace_scope", "reboot"),
    (2, 1000, False, "Yama ptrace_scope is 2", "reboot"),
    (3, 1000, False, "ptrace disabled until reboot", "echo 0"),
    (None, 0, False, "you are root but lack CAP_SYS_PTRACE", "owner or root"),
    (None, 0, True, "refused even to root with CAP_SYS_PTRACE", "owner or root"),
])
def test_permission_advice(scope: int | None, euid: int, cap: bool, expect: str,
                           absent: str) -> None:
    msg = diagnose.permission_advice(PID, scope=scope, euid=euid, cap=cap)
    assert expect in msg and absent not in msg and "\n" not in msg
    if euid != 0:
        assert "sudo" in msg and "--cap-add SYS_PTRACE" in msg


def test_ptrace_scope_and_capabilities_readers(tmp_path: Path) -> None:
    scope = tmp_path / "ptrace_scope"
    assert diagnose.ptrace_scope(scope) is None
    scope.write_text("1\n")
    assert diagnose.ptrace_scope(scope) == 1
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapEff:\t000001fffeffffff\n")
    assert diagnose.has_cap_sys_ptrace(status) is True
    status.write_text("Name:\tx\nCapEff:\t0000000000000000\n")
    assert diagnose.has_cap_sys_ptrace(status) is False
    assert diagnose.has_cap_sys_ptrace(tmp_path / "missing") is None
