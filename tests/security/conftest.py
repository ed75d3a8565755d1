"""Fixtures of the security tests: the CDK app synthesized once per session (the same
session fixture as tests/infra, see tests/infra/_cdk.py), when aws-cdk-lib and Node.js
are installed; without them the tests that need a template are skipped."""

from __future__ import annotations

import importlib.util
import shutil
from typing import Any

import pytest

HAVE_CDK = shutil.which("node") is not None and importlib.util.find_spec("aws_cdk") is not None

if HAVE_CDK:
    from tests.infra._cdk import Synthesized, synthesized

    __all__ = ["full_template_json", "synthesized"]

    @pytest.fixture(scope="session")
    def full_template_json(synthesized: Synthesized) -> dict[str, Any]:
        """The template of the stack with every option (lambda, ecs and process pools,
        the on-prem role), as the JSON CloudFormation receives."""
        template: dict[str, Any] = synthesized.assembly.get_stack_by_name(
            synthesized.full.stack_name
        ).template
        return template

else:

    @pytest.fixture(scope="session")
    def full_template_json() -> dict[str, Any]:
        pytest.skip("needs aws-cdk-lib and Node.js (the infra extra)")
