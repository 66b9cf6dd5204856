"""The shipped process topology: every Procfile process has a systemd unit, and every
unit starts a command that exists, with a restart policy that never gives up."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from blink_sms.cli import cli

ROOT = Path(__file__).resolve().parents[1]
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))


def unit(path: Path) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read(path)
    return parser


def test_every_procfile_process_has_a_unit() -> None:
    processes = [
        line.split(":", 1)[0] for line in (ROOT / "Procfile").read_text().splitlines() if line
    ]
    names = {path.name for path in UNITS}
    for process in processes:
        if process == "release":  # the web unit migrates first (ExecStartPre)
            continue
        assert f"blink-sms-{process}.service" in names
    assert "blink-sms-worker@.service" in names  # the on-premises worker per client


@pytest.mark.parametrize("path", UNITS, ids=lambda p: p.name)
def test_each_unit_restarts_and_runs_a_real_command(path: Path) -> None:
    parsed = unit(path)
    service = parsed["Service"]
    assert service["Restart"] == "always"
    assert parsed["Unit"]["StartLimitIntervalSec"] == "0"
    for key in ("ExecStartPre", "ExecStart"):
        if key not in service:
            continue
        argv = shlex.split(service[key].replace("\\\n", " ").replace("%i", "contoso"))
        if Path(argv[0]).name == "blink-sms":
            # --help parses the whole command line: the command and its options exist.
            result = CliRunner().invoke(cli, [*argv[1:], "--help"])
            assert result.exit_code == 0, result.output
        else:
            assert Path(argv[0]).name == "gunicorn"
            assert argv[-1] == "blink_sms.wsgi:app"
