"""`introspect.start()`: its keyword parameters are the options `AgentConfig` declares, and a
second call never silently ignores options that differ from the running agent's."""

from __future__ import annotations

import inspect
import types
import typing
from dataclasses import fields

import pytest

import introspect
from introspect.config import AgentConfig
from introspect.errors import UserError


def _members(hint: object) -> set[object]:
    """The types a hint admits: a union's members, else the hint itself (`list[int]`)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return set(typing.get_args(hint))
    return {hint}


def test_start_declares_every_config_option_keyword_only_with_its_type():
    params = inspect.signature(introspect.start).parameters
    from introspect.agent.core import Agent  # the return annotation, under TYPE_CHECKING

    hints = typing.get_type_hints(introspect.start, localns={"Agent": Agent})
    config_hints = typing.get_type_hints(AgentConfig)
    assert list(params) == [f.name for f in fields(AgentConfig)]
    for name, param in params.items():
        assert param.kind is inspect.Parameter.KEYWORD_ONLY, name
        # None: "not given", so the INTROSPECT_* variable (else the config's default) applies.
        assert param.default is None, name
        accepted = _members(hints[name])
        expected = _members(config_hints[name])
        assert expected - {type(None)} <= accepted, (name, hints[name], config_hints[name])


def test_start_again_with_no_options_or_the_same_returns_the_running_agent():
    agent = introspect.start(block_threshold=0.25, listen=[], sampling=False)
    try:
        assert introspect.start() is agent
        assert introspect.start(block_threshold=0.25, sampling=False) is agent
        assert agent.config.block_threshold == 0.25
    finally:
        introspect.stop()


def test_start_again_with_other_options_names_them_and_leaves_the_agent_alone():
    agent = introspect.start(console=False, block_threshold=0.25, sampling=False)
    try:
        with pytest.raises(UserError) as caught:
            introspect.start(console=True, block_threshold=0.5, sampling=False,
                             token="a-secret-token-value")
        message = str(caught.value)
        assert "console" in message and "block_threshold" in message and "token" in message
        assert "sampling" not in message  # the same as the running agent's
        assert "a-secret-token-value" not in message  # values are not echoed: tokens
        assert agent.running and introspect.get_agent() is agent
        assert agent.config.console is False and agent.config.block_threshold == 0.25
    finally:
        introspect.stop()
    restarted = introspect.start(console=True)  # after stop(): the new options apply
    try:
        assert restarted is not agent and restarted.config.console is True
    finally:
        introspect.stop()
