"""`introspect run` is invisible to the program: argv, stdin, exit code, signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.procs import AgentProcess

RUN = [sys.executable, "-m", "introspect", "run", "--"]


def test_argv_stdin_and_exit_code_pass_through(tmp_path: Path):
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent("""
        import sys, introspect
        line = sys.stdin.readline().strip()
        agent = introspect.get_agent()
        print("argv", sys.argv[1:], "stdin", line, "agent", agent is not None and agent.running)
        sys.exit(7)
    """))
    out = subprocess.run([*RUN, sys.executable, str(app), "a", "--flag", "b c"],
                         input="hello\n", capture_output=True, text=True, timeout=30)
    assert out.returncode == 7, out.stderr
    assert "argv ['a', '--flag', 'b c'] stdin hello agent True" in out.stdout
    assert "Traceback" not in out.stderr


def test_sigterm_reaches_the_program():
    src = r'''
import signal, sys, time
def on_term(signum, frame):
    print("got SIGTERM", flush=True)
    sys.exit(3)
signal.signal(signal.SIGTERM, on_term)
print("ready", flush=True)
while True:
    time.sleep(0.05)
'''
    with AgentProcess.script(src) as proc:
        proc.wait_for_line("ready")
        proc.wait_for_agent()
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.proc.wait(10) == 3
        proc.wait_for_line("got SIGTERM")


def test_python_dash_m_and_console_scripts(tmp_path: Path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "__main__.py").write_text(
        "import introspect, sys\nprint('module agent', introspect.get_agent() is not None)\n")
    out = subprocess.run([*RUN, sys.executable, "-m", "mypkg"], capture_output=True,
                         text=True, timeout=30, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "module agent True" in out.stdout

    script = tmp_path / "my-tool"
    script.write_text(f"#!{sys.executable}\nimport introspect\n"
                      "print('script agent', introspect.get_agent() is not None)\n")
    script.chmod(0o755)
    out = subprocess.run([*RUN, str(script)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "script agent True" in out.stdout


def test_agent_files_are_removed_at_exit(tmp_path: Path, runtime_dir: str):
    app = tmp_path / "app.py"
    app.write_text("import asyncio, introspect\nasync def main():\n"
                   "    print(introspect.get_agent().listen_addresses(), flush=True)\n"
                   "    await asyncio.sleep(0.1)\nasyncio.run(main())\n")
    proc = subprocess.Popen([*RUN, sys.executable, str(app)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert f"agent-{proc.pid}.sock" in stdout  # it did have an agent...
    assert not (Path(runtime_dir) / f"agent-{proc.pid}.sock").exists()  # ...and cleaned up
    assert not (Path(runtime_dir) / f"agent-{proc.pid}.json").exists()
    for noise in ("Task was destroyed", "Exception ignored", "Traceback", "Profiling timer"):
        assert noise not in stderr
