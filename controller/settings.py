"""Loading configuration: one TOML file, then environment overrides, validated by pydantic.

Environment: `DATABASE_URL`, `CHRONOS_SECRET_KEY`, `CHRONOS_CONFIG` (the TOML path), and
`CHRONOS_<SECTION>__<KEY>` for any other setting, e.g. `CHRONOS_ACS__PORT=8547`.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from schemas.config import Config

DEFAULT_CONFIG_PATH = Path("config/chronos.toml")
_PREFIX = "CHRONOS_"
_DIRECT = {"DATABASE_URL": ("database", "url"), "CHRONOS_SECRET_KEY": ("secret_key",)}


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


def _set(tree: dict[str, Any], keys: tuple[str, ...], value: str) -> None:
    for key in keys[:-1]:
        node = tree.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{'.'.join(keys)}: {key} is not a section")
        tree = node
    tree[keys[-1]] = value


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """The settings the environment gives, as a nested dict."""
    tree: dict[str, Any] = {}
    for name, value in environ.items():
        if name in _DIRECT:
            _set(tree, _DIRECT[name], value)
        elif name.startswith(_PREFIX) and "__" in name:
            keys = tuple(k.lower() for k in name[len(_PREFIX) :].split("__"))
            if all(keys):
                _set(tree, keys, value)
    return tree


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """The TOML file (if present) overlaid with the environment, validated."""
    environ = os.environ if environ is None else environ
    explicit = path is not None or "CHRONOS_CONFIG" in environ
    path = path or Path(environ.get("CHRONOS_CONFIG", DEFAULT_CONFIG_PATH))
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = tomllib.loads(path.read_text("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    elif explicit:
        raise ConfigError(f"{path}: no such configuration file")
    try:
        return Config.model_validate(_merge(data, env_overrides(environ)))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
