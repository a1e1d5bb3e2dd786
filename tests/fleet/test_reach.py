"""Which agent answers for a Prometheus instance (Enter on the Fleet screen): a local agent by
its announced /metrics address or PID, a targets.toml entry by name or `instance`, else none."""

from __future__ import annotations

from pathlib import Path

import pytest

from introspect.fleet.reach import find_agent, how_to_reach
from tests.fleet.conftest import JOB, Fleet


def test_local_agents_by_metrics_address_and_pid(fleet: Fleet) -> None:
    name = "healthy-05"
    instance = fleet.address[name]
    assert find_agent(JOB, instance).target == str(fleet.pid(name))
    assert find_agent(JOB, instance).via == "local agent"
    # a `pid` label on this host picks that process, whatever the port
    assert find_agent(JOB, instance, pid=str(fleet.pid("blocked"))).target == \
        str(fleet.pid("blocked"))
    # the killed one has no agent any more
    assert find_agent(JOB, fleet.address["doomed"]).target is None


def test_targets_file_by_name_or_instance(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    targets = tmp_path / "targets.toml"
    targets.write_text('[targets.api-7]\naddress = "10.0.3.7:7070"\n'
                       'instance = "10.0.3.7:9464"\n\n'
                       '[targets."db:9464"]\naddress = "db:7070"\n')
    monkeypatch.setenv("INTROSPECT_TARGETS_FILE", str(targets))
    assert find_agent("api", "10.0.3.7:9464").target == "api-7"
    assert find_agent("db", "db:9464").target == "db:9464"
    missing = find_agent("api", "10.0.3.8:9464")
    assert missing.target is None
    hint = how_to_reach("api", "10.0.3.8:9464")
    assert str(targets) in hint and 'instance = "10.0.3.8:9464"' in hint
