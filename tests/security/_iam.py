"""A small IAM policy evaluator, for the security tests: is this call allowed by these
identity policy statements (as synthesized into the CloudFormation template)?

The emulator enforces no IAM, so a test that says "a worker may make this call" (or may
not) evaluates the call against the worker's policy documents here. Only the subset the
stack uses is judged:

- `Effect` Allow or Deny; `Action` and `Resource` as strings or lists, with `*` and `?`
  wildcards (actions case-insensitively, as IAM does);
- `Condition` with the operator `ForAllValues:StringLike` only; a key missing from the
  request makes it true, as in IAM (a `ForAllValues` over no value holds);
- explicit Deny wins over Allow; no matching Allow is an implicit deny.

Anything else (`NotAction`, `NotResource`, another condition operator, an intrinsic
function other than `Ref`, `Fn::GetAtt`, `Fn::Join`) raises `CannotJudge`: a test must
never pass because the evaluator guessed.

Resources of the template are named by `resolve`: `Fn::GetAtt [X, Arn]` becomes
`{X.Arn}`, `Ref X` becomes `{X}`, so a test builds the request's resource the same way
(`resolve({"Fn::GetAtt": [table, "Arn"]})`).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PSEUDO = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource", "Condition"}


class CannotJudge(Exception):
    """The policy uses something this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    context: Mapping[str, Sequence[str]] = field(default_factory=dict)
    """Condition keys of the request (each multi-valued, e.g. `dynamodb:LeadingKeys`)."""


def resolve(value: Any) -> Any:
    """A template value with its intrinsic functions replaced by stable names."""
    if isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, list):
        return [resolve(v) for v in value]
    if not isinstance(value, dict):
        raise CannotJudge(f"unexpected value {value!r}")
    if set(value) == {"Ref"}:
        name = value["Ref"]
        return PSEUDO.get(name, f"{{{name}}}")
    if set(value) == {"Fn::GetAtt"}:
        logical_id, attribute = value["Fn::GetAtt"]
        return f"{{{logical_id}.{attribute}}}"
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(str(resolve(p)) for p in parts)
    raise CannotJudge(f"intrinsic function not implemented: {sorted(value)}")


def _list(value: Any) -> list[str]:
    resolved = resolve(value)
    return [str(v) for v in (resolved if isinstance(resolved, list) else [resolved])]


def _like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: `*` any run of characters, `?` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _condition_holds(condition: Mapping[str, Any], request: Request) -> bool:
    for operator, tests in condition.items():
        if operator != "ForAllValues:StringLike":
            raise CannotJudge(f"condition operator not implemented: {operator}")
        for key, patterns in tests.items():
            values = request.context.get(key, ())
            allowed = _list(patterns)
            if not all(any(_like(p, v) for p in allowed) for v in values):
                return False
    return True


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    unknown = set(statement) - STATEMENT_KEYS
    if unknown:
        raise CannotJudge(f"statement element not implemented: {sorted(unknown)}")
    if "Action" not in statement or "Resource" not in statement:
        raise CannotJudge(f"statement without Action or Resource: {statement}")
    if not any(_like(a, request.action, ignore_case=True) for a in _list(statement["Action"])):
        return False
    if not any(_like(r, request.resource) for r in _list(statement["Resource"])):
        return False
    return _condition_holds(statement.get("Condition", {}), request)


def is_allowed(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    """IAM's decision for one identity: an explicit Deny wins, then any Allow."""
    allowed = False
    for statement in statements:
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny"):
            raise CannotJudge(f"statement effect {effect!r}")
        if _applies(statement, request):
            if effect == "Deny":
                return False
            allowed = True
    return allowed


# Finding a role's statements in a synthesized template


def role_statements(template: Mapping[str, Any], role: str) -> list[dict[str, Any]]:
    """Every identity-policy statement of the role with logical id `role`: its inline
    policies, the `AWS::IAM::Policy` resources attached to it and the managed policies
    of the template it names (an AWS managed policy cannot be judged here)."""
    resources = template["Resources"]
    properties = resources[role]["Properties"]
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    for resource in resources.values():
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in resource["Properties"].get(
            "Roles", []
        ):
            documents.append(resource["Properties"]["PolicyDocument"])
    for arn in properties.get("ManagedPolicyArns", []):
        if not (isinstance(arn, dict) and set(arn) == {"Ref"} and arn["Ref"] in resources):
            raise CannotJudge(f"managed policy outside the template: {arn}")
        documents.append(resources[arn["Ref"]]["Properties"]["PolicyDocument"])
    return [dict(s) for document in documents for s in document["Statement"]]


def managed_policy_statements(template: Mapping[str, Any], name_part: str) -> list[dict[str, Any]]:
    """The statements of the template's one managed policy whose name contains
    `name_part` (a policy not attached to a role of the stack, like the on-prem one)."""
    found = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::ManagedPolicy"
        and fnmatch.fnmatchcase(
            str(resolve(r["Properties"].get("ManagedPolicyName", ""))), f"*{name_part}*"
        )
    ]
    if len(found) != 1:
        raise CannotJudge(f"{len(found)} managed policies named *{name_part}*")
    return [dict(s) for s in found[0]["PolicyDocument"]["Statement"]]


def only_resource(template: Mapping[str, Any], kind: str, **properties: Any) -> dict[str, Any]:
    """The properties of the one resource of type `kind` whose (resolved) properties
    include `properties`."""
    found = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == kind
        and all(resolve(r["Properties"].get(k)) == v for k, v in properties.items())
    ]
    assert len(found) == 1, f"{len(found)} {kind} with {properties}"
    return dict(found[0])


def role_of(arn: Any) -> str:
    """The logical id of the role a `Fn::GetAtt [Role, Arn]` names."""
    logical_id, attribute = arn["Fn::GetAtt"]
    assert attribute == "Arn"
    return str(logical_id)
