"""The CDK app behind `cdk deploy` (cdk.json runs `python3 -m infra.app`).

Options come from CDK context (`cdk synth -c stage=prod -c work_pools='{...}'`), validated
by `infra.context`; synthesis makes no AWS call and needs no credentials. cdk-nag's
AwsSolutions checks run on every synthesis (`-c nag=false` turns them off).
"""

from __future__ import annotations

import sys
from pathlib import Path

if not __package__:  # run as `python3 infra/app.py`: import from the repository root,
    # where `infra/constructs/` does not shadow the `constructs` library.
    _ROOT = Path(__file__).resolve().parents[1]
    sys.path[:] = [
        str(_ROOT),
        *(p for p in sys.path if Path(p or ".").resolve() != _ROOT / "infra"),
    ]

import aws_cdk as cdk
import cdk_nag

from infra.context import ContextError, options_from_context
from infra.stacks.stratoflow_stack import StratoflowStack


def build_app(app: cdk.App | None = None) -> cdk.App:
    app = app or cdk.App()
    options = options_from_context(app.node.try_get_context)
    StratoflowStack(app, options.stack_name, options=options)
    if str(app.node.try_get_context("nag")).lower() != "false":
        cdk.Validations.of(app).add_plugins(cdk_nag.AwsSolutionsChecks(app, verbose=True))
    return app


def main() -> None:
    try:
        app = build_app()
    except ContextError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(1) from None
    app.synth()


if __name__ == "__main__":
    main()
