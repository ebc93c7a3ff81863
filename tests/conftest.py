"""Shared fixtures: each support module owns one real service (Docker, moto, GraphQL)."""

pytest_plugins = [
    "tests.support.docker_fixtures",
    "tests.support.aws_fixtures",
    "tests.support.api_fixtures",
]
