"""The docker-model sandbox of notebook 01: real namespaces, NAT and port clash; no leftovers."""

from __future__ import annotations

import os

import pytest

from k8snet import sandbox
from k8snet.lab.net import nsutil

usable, why = sandbox.available()
pytestmark = pytest.mark.skipif(not usable, reason=why)


def test_docker_story_and_cleanup() -> None:
    story = sandbox.docker_story()
    c = story.containers.set_index("container")
    steps = story.steps
    assert list(c["container_ip"]) == ["172.17.0.2", "172.17.0.2", "172.17.0.3"]
    assert steps.loc[0, "answered_by"] == "web@host1"  # the other host's address is our own
    assert steps.loc[1, "answered_by"] == "web@host2" and steps.loc[1, "seen_ip"] == c.loc["web@host1", "host_ip"]
    assert "port is already allocated" in steps.loc[2, "outcome"]
    assert steps.loc[3, "answered_by"] == "api@host2"
    assert not [n for n in nsutil.list_netns(sandbox.PREFIX) if f"-{os.getpid()}-" in n]


def test_close_after_a_failure_leaves_nothing() -> None:
    dm = sandbox.DockerModel()
    web = dm.run("host1", "web")
    with pytest.raises(KeyError):
        dm.run("host9", "web")  # no such host
    dm.close()
    dm.close()  # idempotent
    assert not nsutil.list_netns(web.netns.rsplit("-", 2)[0])
