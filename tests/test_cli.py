"""The `chronos` command as a user runs it: configuration errors, tokens, logs."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from controller import logs
from controller.auth import hash_token
from controller.settings import ConfigError, env_overrides, load_config


def chronos(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller.cli", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


async def test_token_create_list_and_revoke(db_dsn: str, pool: asyncpg.Pool) -> None:
    env = {"DATABASE_URL": db_dsn, "CHRONOS_CONFIG": os.devnull}
    created = chronos("token", "create", "--name", "noc", "--role", "viewer", env=env)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert token.startswith("chr_")
    row = await pool.fetchrow(
        "SELECT name, role FROM api_tokens WHERE token_hash = $1", hash_token(token)
    )
    assert tuple(row) == ("noc", "viewer")
    assert token not in created.stderr  # the token is printed once, never logged
    listed = chronos("token", "list", env=env)
    assert "viewer" in listed.stdout and "noc" in listed.stdout and token not in listed.stdout
    assert chronos("token", "revoke", "--name", "noc", env=env).returncode == 0
    assert await pool.fetchval("SELECT revoked IS NOT NULL FROM api_tokens") is True
    again = chronos("token", "revoke", "--name", "noc", env=env)
    assert again.returncode == 2 and "no active token" in again.stderr


def test_roles_need_a_database_url_and_a_secret_key(tmp_path: Path) -> None:
    env = {"CHRONOS_CONFIG": os.devnull}
    clean = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CHRONOS_SECRET_KEY")}
    result = subprocess.run(
        [sys.executable, "-m", "controller.cli", "acs"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **env},
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "CHRONOS_SECRET_KEY" in result.stderr and "Traceback" not in result.stderr


def test_invalid_configuration_is_refused_with_the_setting_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[acs]\nport = 'seventy'\n")
    result = chronos("--config", str(bad), "migrate")
    assert result.returncode == 2
    assert "acs.port" in result.stderr and "Traceback" not in result.stderr


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[acs]\nport = 8000\nsession_timeout = 60\n")
    config = load_config(path, {"CHRONOS_ACS__PORT": "9000", "DATABASE_URL": "postgresql://x/y"})
    assert config.acs.port == 9000 and config.acs.session_timeout == 60
    assert (
        config.database.url is not None
        and config.database.url.get_secret_value() == "postgresql://x/y"
    )
    assert env_overrides({"CHRONOS_API__HOST": "::1", "OTHER": "x"}) == {"api": {"host": "::1"}}
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(tmp_path / "missing.toml", {})
    with pytest.raises(ConfigError, match=r"acs\.bogus"):
        load_config(None, {"CHRONOS_ACS__BOGUS": "1", "CHRONOS_CONFIG": str(path)})


def test_json_logs_carry_fields_and_redact_secret_names(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.setup("INFO", "json")
    request.addfinalizer(lambda: (setattr(root, "handlers", saved[0]), root.setLevel(saved[1])))
    logging.getLogger("chronos.test").info(
        "connection request", extra={"device_id": "D1", "password": "hunter2", "auth_token": "t"}
    )
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["msg"] == "connection request" and line["device_id"] == "D1"
    assert line["password"] == logs.REDACTED and line["auth_token"] == logs.REDACTED
    assert "hunter2" not in json.dumps(line)
