"""Helpers for the project's tests and benchmarks: a throwaway PostgreSQL cluster, Dagster servers on free ports.

Installed with the package (``pip install -e ".[test]"`` brings the test tools around them), so
tests and benchmarks import the same code instead of copying it.
"""
import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
