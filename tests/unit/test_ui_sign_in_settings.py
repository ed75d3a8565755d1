"""Where the UI's Cognito sign-in settings come from (stratoflow.ui.sign_in_settings):
the environment, or the SSM parameter the stack writes (read at first use, again after a
while), and the roles the groups give. The sign-in through HTTP with the parameter is
tests/functional/test_ui_sign_in.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stratoflow import resources
from stratoflow.settings import Settings
from stratoflow.ui.cognito import role_of
from stratoflow.ui.sign_in_settings import (
    CACHE_SECONDS,
    CognitoConfig,
    ConfigSource,
    SignInParameter,
    SignInSettingsError,
)

ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
DOCUMENT = SignInParameter(
    domain="https://stratoflow-prod-123456789012.auth.eu-west-1.amazoncognito.com/",
    client_id="client-123",
    issuer=ISSUER,
    public_url="https://d111111abcdef8.cloudfront.net",
    viewers_group=resources.UI_VIEWERS_GROUP,
)
PARAMETER = resources.ui_sign_in_parameter_name("stratoflow-prod")


class FakeSsm:
    def __init__(self, value: str) -> None:
        self.value = value
        self.reads: list[str] = []

    def get_parameter(self, Name: str) -> dict[str, Any]:
        self.reads.append(Name)
        return {"Parameter": {"Name": Name, "Value": self.value}}


def settings(**values: Any) -> Settings:
    """Settings from these values only (no STRATOFLOW_UI_* of the test's environment)."""
    blank = {name: None for name in Settings.model_fields if name.startswith("ui_cognito")}
    return Settings(**{**blank, "ui_sign_in_parameter": None, "ui_public_url": None, **values})


def test_the_parameter_is_named_after_the_installation():
    assert PARAMETER == "/stratoflow-prod/ui/sign-in"


def test_the_parameter_is_read_at_first_use_and_again_after_a_while():
    ssm = FakeSsm(DOCUMENT.model_dump_json())
    now = [1000.0]
    source = ConfigSource(
        settings(ui_sign_in_parameter=PARAMETER), lambda: ssm, monotonic=lambda: now[0]
    )
    assert ssm.reads == []
    config = source.get()
    assert config == CognitoConfig(
        domain="https://stratoflow-prod-123456789012.auth.eu-west-1.amazoncognito.com",
        client_id="client-123",
        issuer=ISSUER,
        operators_group="operators",
        public_url="https://d111111abcdef8.cloudfront.net",
        viewers_group="viewers",
    )
    now[0] += CACHE_SECONDS - 1
    assert source.get() == config
    assert ssm.reads == [PARAMETER]
    ssm.value = DOCUMENT.model_copy(update={"client_id": "replaced"}).model_dump_json()
    now[0] += 1
    replaced = source.get()
    assert replaced is not None and replaced.client_id == "replaced"
    assert len(ssm.reads) == 2


def test_the_environment_wins_and_nothing_set_means_no_cognito():
    ssm = FakeSsm("never read")
    env = settings(
        ui_sign_in_parameter=PARAMETER,
        ui_cognito_domain="https://x.auth.eu-west-1.amazoncognito.com/",
        ui_cognito_client_id="abc",
        ui_cognito_user_pool_id="eu-west-1_AbCdEf123",
        ui_public_url="https://ui.example.com",
        ui_viewers_group="readers",
    )
    config = ConfigSource(env, lambda: ssm).get()
    assert config == CognitoConfig(
        domain="https://x.auth.eu-west-1.amazoncognito.com",
        client_id="abc",
        issuer=ISSUER,
        operators_group="operators",
        public_url="https://ui.example.com",
        viewers_group="readers",
    )
    assert ConfigSource(settings(), lambda: ssm).get() is None
    assert ssm.reads == []


def test_settings_given_in_part_say_what_is_missing():
    partial = settings(ui_cognito_domain="https://x", ui_cognito_client_id="a")
    with pytest.raises(SignInSettingsError, match="STRATOFLOW_UI_COGNITO_USER_POOL_ID"):
        ConfigSource(partial, lambda: None).get()


@pytest.mark.parametrize(
    "value",
    ["{", json.dumps({"domain": "https://x"}), json.dumps({**DOCUMENT.model_dump(), "x": 1})],
)
def test_a_broken_parameter_says_to_deploy_again(value: str):
    source = ConfigSource(settings(ui_sign_in_parameter="/p"), lambda: FakeSsm(value))
    with pytest.raises(SignInSettingsError, match=r"SSM parameter /p .*deploy the stack again"):
        source.get()


def test_with_a_viewers_group_only_its_members_and_operators_sign_in():
    config = DOCUMENT.config()
    assert role_of({"cognito:groups": ["viewers", "operators"]}, config) == "operator"
    assert role_of({"cognito:groups": ["viewers"]}, config) == "viewer"
    assert role_of({"cognito:groups": ["others"]}, config) is None
    assert role_of({}, config) is None
    anyone = CognitoConfig("https://x", "c", ISSUER, "operators")
    assert role_of({}, anyone) == "viewer"
    assert role_of({"cognito:groups": "operators"}, anyone) == "viewer"  # not a list
