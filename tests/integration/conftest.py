# SPDX-License-Identifier: MIT
"""conftest.py: shared pytest setup for the integration tests (keep minimal; fixtures live in helper modules)."""

# Docker engine fixtures: docker_engine (session), docker (per test, removes its
# containers), private_docker_engine (a test's own engine, to stop/restart).
from docker_harness import docker, docker_engine, private_docker_engine  # noqa: F401


def pytest_configure(config):
    config.addinivalue_line("markers", "docker: needs the private Docker engine (tests/integration/docker_harness.py)")
