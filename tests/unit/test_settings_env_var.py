from __future__ import annotations

import pytest

from stratoflow.settings import Settings, env_var


def test_env_var_names_the_variable_of_a_field():
    assert env_var("table_name") == "STRATOFLOW_TABLE_NAME"
    assert env_var("backend") == "STRATOFLOW_BACKEND"


def test_every_field_has_a_variable_the_settings_read(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(env_var("queue_prefix"), "from-env")
    assert Settings().queue_prefix == "from-env"
    assert all(env_var(field).startswith("STRATOFLOW_") for field in Settings.model_fields)


def test_unknown_field_is_an_error():
    with pytest.raises(ValueError, match="'table' is not a stratoflow setting"):
        env_var("table")
