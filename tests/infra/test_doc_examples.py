"""The reader of the page's examples (tests/infra/_doc_examples.py), on small pages."""

from __future__ import annotations

import pytest

from tests.infra._doc_examples import ExampleError, documented_examples

PAGE = """\
Text with `cdk synth -c ignored=1` inline.

```bash
make synth                          # a trailing comment
# a lambda pool,
# with its comment on two lines
npx cdk synth -c stage=prod \\
  -c work_pools='{"serverless": {"type": "lambda"}}' \\
  --quiet -c url=https://x.example/?a=b
. .venv/bin/activate && node_modules/.bin/cdk deploy --context alarm_email=a@b.example
npx cdk bootstrap aws://123456789012/eu-west-1
make synth CDK_ARGS='-c stage=test -c retain_data=false'
```

```json
{"cdk synth": "-c not=an-example"}
```
"""


def test_reads_commands_of_bash_blocks_with_their_context():
    examples = documented_examples(PAGE)
    assert [(e.line, e.context) for e in examples] == [
        (4, {}),
        (
            7,
            {
                "stage": "prod",
                "work_pools": '{"serverless": {"type": "lambda"}}',
                "url": "https://x.example/?a=b",
            },
        ),
        (10, {"alarm_email": "a@b.example"}),
        (12, {"stage": "test", "retain_data": "false"}),
    ]
    assert examples[1].comment == "a lambda pool, with its comment on two lines"
    assert examples[1].id == "line7-stage,work_pools,url"
    assert examples[0].id == "line4-default"


@pytest.mark.parametrize(
    ("command", "problem"),
    [
        ("npx cdk synth -c aws:cdk:bundling-stacks=[]", "prefixed with 'aws:'"),
        ("npx cdk synth -c stage", "not key=value"),
        ("npx cdk synth -c", "without a value"),
        ("npx cdk synth -c stage='prod", "No closing quotation"),
        ("npx cdk synth -c stage=prod \\", "continuation"),
    ],
)
def test_commands_the_cli_would_refuse_are_errors(command: str, problem: str):
    with pytest.raises(ExampleError, match=problem):
        documented_examples(f"```bash\n{command}\n```\n")
