"""`usage-stream up --help` names what a newcomer must find: the config file, the data
directory and every port, with the defaults in force."""

from __future__ import annotations

import pytest

from schemas.settings import Settings
from usage_stream.cli import parser


def test_up_help_names_the_config_file_data_directory_and_ports(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parser().parse_args(["up", "--help"])
    text = capsys.readouterr().out
    defaults = Settings.model_fields
    for variable, field in {
        "USAGE_STREAM_CONFIG_FILE": None,
        "USAGE_STREAM_DATA_DIR": "data_dir",
        "USAGE_STREAM_KAFKA_BOOTSTRAP": "kafka_bootstrap",
        "USAGE_STREAM_CLICKHOUSE_HTTP_PORT": "clickhouse_http_port",
        "USAGE_STREAM_COLLECTOR_PORT": "collector_port",
        "USAGE_STREAM_WORKER_PORT": "worker_port",
    }.items():
        assert variable in text
        if field is not None:
            assert str(defaults[field].default) in text, field
    assert "port + 1" in text  # the local broker's controller
    assert "SIGINT" in text
