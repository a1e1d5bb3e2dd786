"""A pip user's view: a wheel built from this checkout, installed in a fresh venv, writes the ops
files with `introspect export DIR`; promtool accepts the rules, their unit tests pass there, the
scrape configs load and the dashboards parse."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import venv
from pathlib import Path

from tests.deploy.support import REPO
from tests.support.prometheus_server import find_binary


def _run(argv: list[str | Path], cwd: Path | None = None, timeout: float = 300) -> str:
    result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{argv}: {result.stdout}\n{result.stderr}"
    return result.stdout


def _wheel(tmp: Path) -> Path:
    """Built from a copy of the checkout's files (the build writes into its source tree)."""
    source = tmp / "src"
    files = _run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO).splitlines()
    for rel in files:
        if (REPO / rel).is_file():
            (source / rel).parent.mkdir(parents=True, exist_ok=True)
            (source / rel).write_bytes((REPO / rel).read_bytes())
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp / "dist", source])
    [wheel] = (tmp / "dist").glob("introspect-*.whl")
    return wheel


def _fresh_venv(tmp: Path, wheel: Path) -> Path:
    """The wheel alone in a new venv; its dependencies are read from the test's environment
    (a .pth line: a plain path, so the checkout's editable install is not seen)."""
    env = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env)
    [target] = (env / "lib").glob("python3*/site-packages")
    _run([env / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", wheel])
    (target / "zz-deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    return env / "bin"


def test_export_from_an_installed_wheel_passes_promtool(tmp_path: Path) -> None:
    bindir = _fresh_venv(tmp_path, _wheel(tmp_path))
    where = _run([bindir / "python", "-c", "import introspect; print(introspect.__file__)"],
                 cwd=tmp_path)
    assert where.startswith(str(tmp_path / "venv")), where
    assert _run([bindir / "introspect", "--version"]).startswith("introspect ")
    assert list((bindir.parent / "lib").glob(
        "python3*/site-packages/introspect-*.dist-info/licenses/LICENSE"))
    out = tmp_path / "ops"
    _run([bindir / "introspect", "export", out], cwd=tmp_path)
    promtool = find_binary("promtool")
    prometheus_dir = out / "prometheus"
    _run([promtool, "check", "rules", "introspect.rules.yml"], cwd=prometheus_dir)
    tests = sorted(p.name for p in (prometheus_dir / "tests").glob("*.yml"))
    assert tests
    _run([promtool, "test", "rules", *tests], cwd=prometheus_dir / "tests")
    for config in ("prometheus.yml", "prometheus-from-collector.yml"):
        # run from elsewhere: every path in the config is relative to the config's own place
        _run([promtool, "check", "config", prometheus_dir / config], cwd=tmp_path)
    boards = list((out / "grafana").glob("*.json"))
    assert len(boards) == 2
    for board in boards:
        assert json.loads(board.read_text())["panels"]
    assert "receivers:" in (out / "otel-collector" / "config.yaml").read_text()
