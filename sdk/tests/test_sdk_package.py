"""The installed distribution: the version it reports on the wire, and its type information."""

from __future__ import annotations

from importlib import metadata, resources

from usage_stream_sdk import messages


def test_the_wire_reports_the_installed_version() -> None:
    # messages.VERSION goes into every event's context.library and the User-Agent
    assert metadata.version("usage-stream-sdk") == messages.VERSION


def test_type_checkers_see_the_package_as_typed() -> None:
    assert resources.files("usage_stream_sdk").joinpath("py.typed").is_file()
