"""`strato config show|from-stack`."""

from __future__ import annotations

import shlex
from typing import Annotated, Any

import typer
from rich.table import Table

from stratoflow.cli.common import fail, one_line_errors, out, print_json

config_app = typer.Typer(
    help="Show the configuration, or take it from a deployed stack.", no_args_is_help=True
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@config_app.command("show")
def show(as_json: JsonOption = False) -> None:
    """The settings in effect, with the environment variable that sets each one."""
    from stratoflow.settings import env_var, get_settings

    with one_line_errors():
        settings = get_settings()
    rows = {env_var(name): getattr(settings, name) for name in type(settings).model_fields}
    if as_json:
        print_json(rows)
        return
    table = Table(title="stratoflow settings")
    table.add_column("variable")
    table.add_column("value")
    for name, value in rows.items():
        table.add_row(name, "" if value is None else str(value))
    out.print(table)


@config_app.command("from-stack")
def from_stack(
    stack: Annotated[str, typer.Argument(help="The CloudFormation stack, e.g. Stratoflow-prod.")],
    as_json: JsonOption = False,
) -> None:
    """Print `export` lines configuring the CLI and workers for a deployed stack:

    eval "$(strato config from-stack Stratoflow-prod)"
    """
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from stratoflow.resources import OPTIONAL_STACK_OUTPUTS, STACK_OUTPUTS
    from stratoflow.settings import env_var, get_settings

    with one_line_errors():
        settings = get_settings()
    try:
        client: Any = boto3.Session(region_name=settings.region).client(
            "cloudformation", endpoint_url=settings.endpoint_url
        )
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        raise fail(f"Cannot read stack {stack!r}: {exc.response['Error']['Message']}") from None
    except BotoCoreError as exc:
        raise fail(f"Cannot read stack {stack!r}: {exc}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}
    missing = sorted(set(STACK_OUTPUTS) - set(outputs))
    if missing:
        raise fail(
            f"Stack {stack!r} has no output(s) {', '.join(missing)}: is it a stratoflow stack "
            "(deployed from infra/ with cdk deploy)?"
        )
    values = {STACK_OUTPUTS[key]: outputs[key] for key in STACK_OUTPUTS}
    values[env_var("backend")] = "aws"
    # The web UI's URL, when the stack has one (not with `-c ui=false`).
    values |= {var: outputs[key] for key, var in OPTIONAL_STACK_OUTPUTS.items() if key in outputs}
    if as_json:
        print_json(values)
        return
    for name, value in values.items():
        out.print(f"export {name}={shlex.quote(value)}", highlight=False, soft_wrap=True)
