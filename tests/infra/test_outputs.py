"""Stack outputs: named after the settings they set (`strato config from-stack`)."""

from __future__ import annotations

from typing import Any

from infra import outputs
from stratoflow.resources import OPTIONAL_STACK_OUTPUTS, STACK_OUTPUTS, UI_URL_VARIABLE
from stratoflow.settings import Settings
from tests.infra._cdk import Synthesized, logical_id


def test_settings_outputs_map_to_settings():
    for variable in STACK_OUTPUTS.values():
        field = variable.removeprefix("STRATOFLOW_").lower()
        assert field in Settings.model_fields


def test_every_stack_has_the_settings_outputs(default_template: Any, full_template: Any):
    for template in (default_template, full_template):
        found = template.to_json()["Outputs"]
        assert set(STACK_OUTPUTS) <= set(found)
        for name, variable in STACK_OUTPUTS.items():
            assert found[name]["Description"] == f"Sets {variable}"


def test_output_values(full_template: Any, synthesized: Synthesized):
    stack = synthesized.full
    found = {k: v["Value"] for k, v in full_template.to_json()["Outputs"].items()}
    assert found["TableName"] == {"Ref": logical_id(stack, stack.state.table)}
    assert found["ResultsBucket"] == {"Ref": logical_id(stack, stack.buckets.results)}
    assert found["CodeBucket"] == {"Ref": logical_id(stack, stack.buckets.code)}
    assert found["RunsLogGroup"] == {"Ref": logical_id(stack, stack.run_logs.log_group)}
    assert found["QueuePrefix"] == "stratoflow-full"
    assert found["Region"] == {"Ref": "AWS::Region"}
    assert found[outputs.NOTIFICATIONS_TOPIC_ARN] == {
        "Ref": logical_id(stack, stack.notifications.topic)
    }
    per_pool = {
        "OnPremWorkerPolicyArnDefault": stack.on_prem["default"].policy,
        "OnPremWorkerRoleArnDefault": stack.on_prem["default"].role,
        "OnPremWorkerPolicyArnEtlNightly": stack.on_prem["etl-nightly"].policy,
        "OnPremWorkerRoleArnEtlNightly": stack.on_prem["etl-nightly"].role,
    }
    for name, resource in per_pool.items():
        value = found[name]
        reference = {"Ref": logical_id(stack, resource)}
        assert value in (reference, {"Fn::GetAtt": [reference["Ref"], "Arn"]}), name
    web_ui = stack.web_ui
    assert web_ui is not None
    assert found[outputs.UI_URL] == {
        "Fn::Join": [
            "",
            ["https://", {"Fn::GetAtt": [logical_id(stack, web_ui.distribution), "DomainName"]}],
        ]
    }
    assert set(found) == (
        set(STACK_OUTPUTS) | set(outputs.INFO_OUTPUTS) | set(per_pool) | {outputs.UI_URL}
    )


def test_role_output_only_with_a_principal(default_template: Any):
    found = default_template.to_json()["Outputs"]
    assert outputs.on_prem_role_output("default") not in found
    assert outputs.on_prem_policy_output("default") in found


def test_per_pool_output_names():
    assert outputs.on_prem_policy_output("etl-nightly") == "OnPremWorkerPolicyArnEtlNightly"
    assert outputs.on_prem_role_output("gpu_2.b") == "OnPremWorkerRoleArnGpu2B"
    assert outputs.colliding_pools(["etl-a", "etl_a", "EtlA", "other"]) == [
        ["etl-a", "etl_a", "EtlA"]
    ]


def test_the_ui_url_is_an_optional_output_of_its_own_variable():
    assert OPTIONAL_STACK_OUTPUTS == {outputs.UI_URL: UI_URL_VARIABLE}
    assert not set(OPTIONAL_STACK_OUTPUTS) & set(STACK_OUTPUTS)
