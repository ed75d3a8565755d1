"""The policy evaluator of the security tests (tests/security/_iam.py) on hand-written
policies: wildcards, the LeadingKeys condition, Deny over Allow, and refusing to guess."""

from __future__ import annotations

from typing import Any

import pytest

from tests.security._iam import (
    CannotJudge,
    Request,
    is_allowed,
    managed_policy_statements,
    resolve,
    role_statements,
)

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/t"
RUNS_ONLY: dict[str, Any] = {
    "Effect": "Allow",
    "Action": ["dynamodb:PutItem", "dynamodb:UpdateItem"],
    "Resource": TABLE,
    "Condition": {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["FLOWRUN#*", "WORKER#*"]}},
}


def put(*partitions: str, action: str = "dynamodb:PutItem", resource: str = TABLE) -> Request:
    return Request(action, resource, {"dynamodb:LeadingKeys": list(partitions)})


def test_leading_keys_allow_only_the_listed_partitions() -> None:
    assert is_allowed([RUNS_ONLY], put("FLOWRUN#a"))
    assert is_allowed([RUNS_ONLY], put("WORKER#pool"))
    assert not is_allowed([RUNS_ONLY], put("DEPLOYMENT#a"))
    assert not is_allowed([RUNS_ONLY], put("XFLOWRUN#a"))  # the pattern is anchored
    # ForAllValues: every value must match.
    assert not is_allowed([RUNS_ONLY], put("FLOWRUN#a", "DEPLOYMENT#a"))


def test_a_missing_key_satisfies_for_all_values_as_in_iam() -> None:
    assert is_allowed([RUNS_ONLY], Request("dynamodb:PutItem", TABLE))


def test_actions_match_case_insensitively_with_wildcards_resources_exactly() -> None:
    statement = {"Effect": "Allow", "Action": "dynamodb:*Item", "Resource": f"{TABLE}/index/*"}
    assert is_allowed([statement], put(action="DynamoDB:getitem", resource=f"{TABLE}/index/x"))
    assert not is_allowed([statement], put(action="dynamodb:Query", resource=f"{TABLE}/index/x"))
    assert not is_allowed([statement], put(action="dynamodb:GetItem", resource=TABLE))
    assert not is_allowed([statement], put(resource=f"{TABLE}/INDEX/x"))
    one = {"Effect": "Allow", "Action": "s3:GetObjec?", "Resource": "arn:aws:s3:::b/?"}
    assert is_allowed([one], Request("s3:GetObject", "arn:aws:s3:::b/k"))
    assert not is_allowed([one], Request("s3:GetObject", "arn:aws:s3:::b/kk"))


def test_explicit_deny_wins_and_nothing_allowed_is_denied() -> None:
    deny = {"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": "*"}
    assert not is_allowed([RUNS_ONLY, deny], put("FLOWRUN#a"))
    assert not is_allowed([], put("FLOWRUN#a"))


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"},
        {"Effect": "Allow", "Action": "*", "NotResource": TABLE},
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"},
        {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {}}},
        {"Effect": "Allow", "Action": "*", "Resource": {"Fn::Sub": "${AWS::Region}"}},
        {"Effect": "Maybe", "Action": "*", "Resource": "*"},
        {"Effect": "Allow", "Resource": "*"},
    ],
    ids=["NotAction", "NotResource", "Principal", "operator", "Fn::Sub", "effect", "no-action"],
)
def test_what_it_cannot_judge_raises(statement: dict[str, Any]) -> None:
    with pytest.raises(CannotJudge):
        is_allowed([statement], put("FLOWRUN#a"))


def test_template_values_resolve_to_stable_names() -> None:
    arn = {"Fn::GetAtt": ["Table1", "Arn"]}
    assert resolve(arn) == "{Table1.Arn}"
    assert resolve({"Fn::Join": ["", [arn, "/index/", {"Ref": "AWS::Region"}]]}) == (
        "{Table1.Arn}/index/us-east-1"
    )
    assert resolve([{"Ref": "Queue"}]) == ["{Queue}"]


def test_a_roles_statements_come_from_inline_attached_and_managed_policies() -> None:
    def doc(sid: str) -> dict[str, Any]:
        return {"Statement": [{"Sid": sid, "Effect": "Allow", "Action": "a:b", "Resource": "*"}]}

    template = {
        "Resources": {
            "Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Policies": [{"PolicyName": "i", "PolicyDocument": doc("Inline")}],
                    "ManagedPolicyArns": [{"Ref": "Managed"}],
                },
            },
            "Attached": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Roles": [{"Ref": "Role"}], "PolicyDocument": doc("Attached")},
            },
            "Other": {
                "Type": "AWS::IAM::Policy",
                "Properties": {"Roles": [{"Ref": "Else"}], "PolicyDocument": doc("Other")},
            },
            "Managed": {
                "Type": "AWS::IAM::ManagedPolicy",
                "Properties": {"ManagedPolicyName": "x-on-prem", "PolicyDocument": doc("Managed")},
            },
        }
    }
    sids = sorted(s["Sid"] for s in role_statements(template, "Role"))
    assert sids == ["Attached", "Inline", "Managed"]
    assert [s["Sid"] for s in managed_policy_statements(template, "on-prem")] == ["Managed"]
    with pytest.raises(CannotJudge):
        managed_policy_statements(template, "nothing")
    template["Resources"]["Role"]["Properties"]["ManagedPolicyArns"] = [
        "arn:aws:iam::aws:policy/AdministratorAccess"
    ]
    with pytest.raises(CannotJudge):
        role_statements(template, "Role")
