"""The web UI in the stack (infra/constructs/web_ui.py): the API Lambda behind its
Function URL (AWS_IAM) and CloudFront with origin access control, the Cognito user pool
and app client, the sign-in parameter, the API role's statements, no dependency cycle,
and `-c ui=false` / `-c ui_web_acl_arn=...` (documented examples of
docs/infrastructure.md, synthesized with cdk-nag on)."""

from __future__ import annotations

import json
import re
from typing import Any

from infra import outputs, permissions
from infra.constructs.web_ui import STATIC_PATTERN
from stratoflow import resources
from stratoflow.settings import env_var
from stratoflow.ui.rendering import CONTENT_SECURITY_POLICY
from stratoflow.ui.sign_in_settings import CALLBACK_PATH, SIGNED_OUT_PATH, SignInParameter
from stratoflow.ui.static import YEAR_SECONDS
from tests.infra._cdk import Synthesized, logical_id, only, resources_of
from tests.infra._documented import ExampleSynthesis
from tests.infra.test_ecs_runner import policy_statements as statements_by_sid

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"
"""AWS's managed cache and origin request policies (their ids are fixed)."""


def ui(synthesized: Synthesized) -> Any:
    web_ui = synthesized.full.web_ui
    assert web_ui is not None
    return web_ui


def lid(synthesized: Synthesized, construct: Any) -> str:
    return logical_id(synthesized.full, construct)


def distribution_config(full_template: Any) -> dict[str, Any]:
    return only(full_template, "AWS::CloudFront::Distribution")["DistributionConfig"]  # type: ignore[no-any-return]


def test_the_api_function_is_reached_only_through_its_iam_function_url(
    full_template: Any, synthesized: Synthesized
):
    web_ui = ui(synthesized)
    function = lid(synthesized, web_ui.function)
    url = only(full_template, "AWS::Lambda::Url")
    assert url == {"AuthType": "AWS_IAM", "TargetFunctionArn": {"Fn::GetAtt": [function, "Arn"]}}
    # CloudFront's service principal may invoke it, for this distribution only; nobody
    # else may (no other permission names the function or its URL).
    targets = [
        {"Fn::GetAtt": [function, "Arn"]},
        {"Fn::GetAtt": [lid(synthesized, web_ui.function_url), "FunctionArn"]},
    ]
    permissions_of = [
        p["Properties"]
        for p in resources_of(full_template, "AWS::Lambda::Permission").values()
        if p["Properties"]["FunctionName"] in targets
    ]
    assert {p["Action"] for p in permissions_of} == {
        "lambda:InvokeFunctionUrl",
        "lambda:InvokeFunction",
    }
    distribution = lid(synthesized, web_ui.distribution)
    for permission in permissions_of:
        assert permission["Principal"] == "cloudfront.amazonaws.com"
        assert distribution in json.dumps(permission["SourceArn"])
        assert "FunctionUrlAuthType" not in permission  # never NONE
    (invoke,) = [p for p in permissions_of if p["Action"] == "lambda:InvokeFunction"]
    assert invoke["InvokedViaFunctionUrl"] is True


def test_cloudfront_signs_its_requests_to_the_function_url(
    full_template: Any, synthesized: Synthesized
):
    oac = only(full_template, "AWS::CloudFront::OriginAccessControl")["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("lambda", "always")
    assert oac["SigningProtocol"] == "sigv4"
    (origin,) = distribution_config(full_template)["Origins"]
    url = lid(synthesized, ui(synthesized).function_url)
    assert origin["DomainName"] == {
        "Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": [url, "FunctionUrl"]}]}]
    }
    assert "OriginAccessControlId" in origin
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["CustomOriginConfig"]["OriginReadTimeout"] == 30


def test_pages_are_never_cached_and_reach_the_function_without_host(full_template: Any):
    default = distribution_config(full_template)["DefaultCacheBehavior"]
    assert default["ViewerProtocolPolicy"] == "redirect-to-https"
    assert default["CachePolicyId"] == CACHING_DISABLED
    # Cookies, query strings and every viewer header but Host (a Function URL refuses
    # another Host; x-amz-content-sha256, x-csrf-token, hx-* and Origin pass).
    assert default["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert {"GET", "HEAD", "POST"} <= set(default["AllowedMethods"])
    assert default["Compress"] is True


def test_static_files_are_cached_by_path_and_version(full_template: Any, synthesized: Synthesized):
    config = distribution_config(full_template)
    (static,) = config["CacheBehaviors"]
    assert static["PathPattern"] == STATIC_PATTERN == "/static/*"
    assert static["AllowedMethods"] == ["GET", "HEAD"]
    assert static["ViewerProtocolPolicy"] == "redirect-to-https"
    assert "OriginRequestPolicyId" not in static  # no cookie, no header: public files
    assert static["CachePolicyId"] == {"Ref": lid(synthesized, ui(synthesized).static_cache)}
    policy = only(full_template, "AWS::CloudFront::CachePolicy")["CachePolicyConfig"]
    key = policy["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["QueryStringsConfig"] == {"QueryStringBehavior": "whitelist", "QueryStrings": ["v"]}
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}
    assert key["HeadersConfig"] == {"HeaderBehavior": "none"}
    assert policy["MaxTTL"] == YEAR_SECONDS and policy["MinTTL"] == 0


def test_security_headers_and_access_logs(full_template: Any, synthesized: Synthesized):
    config = distribution_config(full_template)
    policy = only(full_template, "AWS::CloudFront::ResponseHeadersPolicy")
    headers = policy["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 365 * 24 * 3600
    assert headers["ContentSecurityPolicy"]["ContentSecurityPolicy"] == CONTENT_SECURITY_POLICY
    assert headers["FrameOptions"]["FrameOption"] == "DENY"
    assert headers["ContentTypeOptions"] == {"Override": True}
    policy_id = {"Ref": lid(synthesized, ui(synthesized).headers_policy)}
    assert config["DefaultCacheBehavior"]["ResponseHeadersPolicyId"] == policy_id
    assert config["CacheBehaviors"][0]["ResponseHeadersPolicyId"] == policy_id
    logs = lid(synthesized, ui(synthesized).log_bucket)
    assert config["Logging"] == {
        "Bucket": {"Fn::GetAtt": [logs, "RegionalDomainName"]},
        "Prefix": "cloudfront/",
    }
    assert "WebACLId" not in config


def test_the_user_pool_admits_only_invited_users_with_strong_passwords(full_template: Any):
    pool = only(full_template, "AWS::Cognito::UserPool")
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["UserPoolTier"] == "LITE"
    assert (pool["MfaConfiguration"], pool["EnabledMfas"]) == ("OPTIONAL", ["SOFTWARE_TOKEN_MFA"])
    password = pool["Policies"]["PasswordPolicy"]
    assert password["MinimumLength"] >= 12
    assert all(
        password[f"Require{kind}"] for kind in ("Lowercase", "Uppercase", "Numbers", "Symbols")
    )
    assert pool["UsernameAttributes"] == ["email"]
    # The invitation names the UI's URL.
    assert "DomainName" in json.dumps(pool["AdminCreateUserConfig"]["InviteMessageTemplate"])
    groups = resources_of(full_template, "AWS::Cognito::UserPoolGroup")
    assert sorted(g["Properties"]["GroupName"] for g in groups.values()) == [
        resources.UI_OPERATORS_GROUP,
        resources.UI_VIEWERS_GROUP,
    ]


def test_the_hosted_login_is_named_after_the_stack(full_template: Any):
    domain = only(full_template, "AWS::Cognito::UserPoolDomain")["Domain"]
    stack_uuid = {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    assert domain == {
        "Fn::Join": [
            "-",
            ["stratoflow-full", {"Fn::Select": [0, {"Fn::Split": ["-", stack_uuid]}]}],
        ]
    }


def test_the_app_client_is_public_with_the_code_flow_to_the_distribution(
    full_template: Any, synthesized: Synthesized
):
    client = only(full_template, "AWS::Cognito::UserPoolClient")
    distribution = lid(synthesized, ui(synthesized).distribution)

    def url(path: str) -> dict[str, Any]:
        domain = {"Fn::GetAtt": [distribution, "DomainName"]}
        return {"Fn::Join": ["", ["https://", domain, path]]}

    assert client["GenerateSecret"] is False
    assert client["AllowedOAuthFlows"] == ["code"]
    assert client["AllowedOAuthFlowsUserPoolClient"] is True
    assert client["AllowedOAuthScopes"] == ["openid", "email", "profile"]
    assert client["CallbackURLs"] == [url(CALLBACK_PATH)]
    assert client["LogoutURLs"] == [url(SIGNED_OUT_PATH)]
    assert client["SupportedIdentityProviders"] == ["COGNITO"]
    assert client["PreventUserExistenceErrors"] == "ENABLED"


def _placeholders(value: Any) -> str:
    """A `Fn::Join` of the template as text, each reference as `<LogicalId.Attribute>`."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return f"<{value['Ref']}>"
    if "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    separator, parts = value["Fn::Join"]
    return str(separator).join(_placeholders(part) for part in parts)


def test_the_sign_in_parameter_holds_what_the_function_reads(
    full_template: Any, synthesized: Synthesized
):
    web_ui = ui(synthesized)
    parameter = only(full_template, "AWS::SSM::Parameter")
    assert parameter["Name"] == resources.ui_sign_in_parameter_name("stratoflow-full")
    assert parameter["Type"] == "String" and parameter["Tier"] == "Standard"
    document = SignInParameter.model_validate_json(_placeholders(parameter["Value"]))
    pool = lid(synthesized, web_ui.user_pool)
    domain = lid(synthesized, web_ui.hosted_login)
    distribution = lid(synthesized, web_ui.distribution)
    assert document == SignInParameter(
        domain=f"https://<{domain}>.auth.<AWS::Region>.amazoncognito.com",
        client_id=f"<{lid(synthesized, web_ui.client)}>",
        issuer=f"<{pool}.ProviderURL>",
        public_url=f"https://<{distribution}.DomainName>",
        operators_group=resources.UI_OPERATORS_GROUP,
        viewers_group=resources.UI_VIEWERS_GROUP,
    )


def test_the_function_gets_the_parameters_name_and_no_cycle(
    full_template: Any, synthesized: Synthesized
):
    web_ui = ui(synthesized)
    function = full_template.to_json()["Resources"][lid(synthesized, web_ui.function)]
    env = function["Properties"]["Environment"]["Variables"]
    assert env[env_var("ui_sign_in_parameter")] == "/stratoflow-full/ui/sign-in"
    # Nothing the distribution depends on may refer to what depends on the distribution:
    # the function, its role and policy refer to no Cognito, CloudFront or SSM resource.
    later = {
        lid(synthesized, c)
        for c in (web_ui.distribution, web_ui.user_pool, web_ui.client, web_ui.parameter)
    }
    role = lid(synthesized, web_ui.role)
    (policy,) = [
        p
        for p in resources_of(full_template, "AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": role}]
    ]
    for resource in (function, policy, full_template.to_json()["Resources"][role]):
        text = json.dumps(resource)
        assert not any(name in text for name in later), resource


def test_the_api_role_may_do_what_the_pages_do_and_no_more(
    full_template: Any, synthesized: Synthesized
):
    stack = synthesized.full
    web_ui = ui(synthesized)
    found = statements_by_sid(full_template, lid(synthesized, web_ui.role))
    assert set(found) == {
        "WriteOwnLogs",
        "ReadStateTable",
        "WriteRunItems",
        "SendToWorkQueues",
        "ReadQueueDepths",
        "ReadRunLogs",
        "ReadSignInParameter",
    }
    write = found["WriteRunItems"]
    assert write["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(permissions.UI_PARTITIONS)}
    }
    assert list(permissions.UI_PARTITIONS) == [
        "UISESSION#*",
        "FLOWRUN#*",
        "DEPLOYMENT#*",
        "SCHEDULEMARKS#*",
        "WORKPOOL#*",
        "AUTOMATION#*",
    ]
    work_queues = [
        {"Fn::GetAtt": [lid(synthesized, q.queue), "Arn"]} for q in stack.work_queues.queues
    ]
    dlqs = [
        {"Fn::GetAtt": [lid(synthesized, q.dead_letter_queue), "Arn"]}
        for q in stack.work_queues.queues
    ]
    assert found["SendToWorkQueues"]["Resource"] == work_queues  # no DLQ, no task queue
    assert found["ReadQueueDepths"]["Action"] == ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"]
    assert found["ReadQueueDepths"]["Resource"] == work_queues + dlqs
    assert found["ReadRunLogs"]["Action"] == "logs:GetLogEvents"
    assert found["ReadRunLogs"]["Resource"] == {
        "Fn::GetAtt": [lid(synthesized, stack.run_logs.log_group), "Arn"]
    }
    assert found["ReadSignInParameter"]["Action"] == "ssm:GetParameter"
    assert _placeholders(found["ReadSignInParameter"]["Resource"]) == (
        "arn:<AWS::Partition>:ssm:<AWS::Region>:<AWS::AccountId>:parameter/stratoflow-full/ui/sign-in"
    )
    actions = json.dumps(found)
    assert not re.search(r"s3:|secretsmanager:|sqs:ReceiveMessage|sqs:DeleteMessage", actions)


def test_the_stack_outputs_the_ui_url(full_template: Any, synthesized: Synthesized):
    output = full_template.to_json()["Outputs"][outputs.UI_URL]
    distribution = lid(synthesized, ui(synthesized).distribution)
    assert _placeholders(output["Value"]) == f"https://<{distribution}.DomainName>"
    assert resources.UI_URL_VARIABLE in output["Description"]


def _template(synthesis: ExampleSynthesis) -> dict[str, Any]:
    (path,) = synthesis.templates
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def _example(documented_syntheses: dict[str, ExampleSynthesis], option: str) -> dict[str, Any]:
    (example_id,) = [key for key in documented_syntheses if key.endswith(f"-{option}")]
    return _template(documented_syntheses[example_id])


def test_ui_false_leaves_the_ui_out(documented_syntheses: dict[str, ExampleSynthesis]):
    template = _example(documented_syntheses, "ui")
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert not {k for k in kinds if k.startswith(("AWS::CloudFront::", "AWS::Cognito::"))}
    assert "AWS::SSM::Parameter" not in kinds and "AWS::Lambda::Url" not in kinds
    assert outputs.UI_URL not in template["Outputs"]
    names = [
        r["Properties"]["FunctionName"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    assert "stratoflow-dev-api" not in names


def test_a_web_acl_of_yours_protects_the_distribution(
    documented_syntheses: dict[str, ExampleSynthesis],
):
    template = _example(documented_syntheses, "ui_web_acl_arn")
    (distribution,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CloudFront::Distribution"
    ]
    acl = distribution["Properties"]["DistributionConfig"]["WebACLId"]
    assert re.fullmatch(r"arn:aws:wafv2:us-east-1:\d{12}:global/webacl/.+", acl)
