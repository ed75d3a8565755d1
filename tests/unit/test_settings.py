from __future__ import annotations

from pathlib import Path

import pytest

from stratoflow.settings import SettingsError, load_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch):
    for name in ("STRATOFLOW_HOME", "STRATOFLOW_LOGGING_LEVEL", "STRATOFLOW_LOG_TO_CONSOLE"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.home == Path("~/.stratoflow")
    assert settings.storage_path == Path("~/.stratoflow").expanduser() / "storage"
    assert settings.logging_level == "INFO"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.setenv("STRATOFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("STRATOFLOW_LOGGING_LEVEL", "debug")
    monkeypatch.setenv("STRATOFLOW_THREAD_POOL_MAX_WORKERS", "3")
    settings = load_settings()
    assert settings.cache_path == tmp_path / "cache"
    assert settings.logging_level == "DEBUG"
    assert settings.thread_pool_max_workers == 3


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("STRATOFLOW_LOGGING_LEVEL", "LOUD", "STRATOFLOW_LOGGING_LEVEL: Input should be 'DEBUG'"),
        ("STRATOFLOW_THREAD_POOL_MAX_WORKERS", "0", "STRATOFLOW_THREAD_POOL_MAX_WORKERS: Input"),
        ("STRATOFLOW_LOG_TO_CONSOLE", "maybe", "STRATOFLOW_LOG_TO_CONSOLE: Input should be"),
    ],
)
def test_misconfiguration_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
):
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert str(raised.value).startswith("Invalid stratoflow configuration: ")
    assert expected in str(raised.value)
