# SPDX-License-Identifier: MIT
"""conftest.py: shared pytest setup for the integration tests (keep minimal; fixtures live in helper modules)."""

# Docker engine fixtures: docker_engine (session), docker (per test, removes its
# containers), private_docker_engine (a test's own engine, to stop/restart).
from docker_harness import docker, docker_engine, private_docker_engine  # noqa: F401
import pytest
from fake_loki import FakeLoki


@pytest.fixture
def fake():
    """A fake Loki on a free loopback port, stopped after the test (a module may define its own)."""
    f = FakeLoki()
    f.start(0)
    yield f
    f.stop()


def pytest_configure(config):
    config.addinivalue_line("markers", "docker: needs the private Docker engine (tests/integration/docker_harness.py)")
