"""The CDK tests need aws-cdk-lib (the `infra` extra) and Node.js (aws-cdk-lib runs on
jsii); without them they are not collected."""

from __future__ import annotations

import importlib.util
import shutil

if shutil.which("node") is None or importlib.util.find_spec("aws_cdk") is None:
    collect_ignore_glob = ["test_*.py"]
else:
    from tests.infra._cdk import default_template, full_template, synthesized
    from tests.infra._documented import documented_syntheses

    __all__ = ["default_template", "documented_syntheses", "full_template", "synthesized"]
