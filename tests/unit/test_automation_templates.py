"""Templates of automation actions: the immutable sandbox and the bound on output."""

from __future__ import annotations

import subprocess
import sys

import pytest

from stratoflow.automations.sandbox import MAX_RENDERED_LENGTH, TemplateProblem, environment
from stratoflow.automations.templates import render, render_value


def test_the_sandbox_is_the_immutable_one():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    assert isinstance(environment(), ImmutableSandboxedEnvironment)


@pytest.mark.parametrize(
    "template",
    [
        "{{ items.append(3) }}",
        "{% set _ = items.pop() %}",
        "{{ mapping.update({'b': 2}) }}",
        "{{ mapping.setdefault('b', 2) }}",
        "{{ mapping.clear() }}",
    ],
)
def test_a_template_that_mutates_a_list_or_dict_fails_clearly(template: str):
    items, mapping = [1, 2], {"a": 1}
    scope = {"items": items, "mapping": mapping}
    with pytest.raises(TemplateProblem, match="refused by the sandbox") as caught:
        render(template, scope)
    assert "may read values but not change a list or dict" in str(caught.value)
    if "{%" not in template:  # a whole expression: evaluated, not rendered
        with pytest.raises(TemplateProblem, match="refused by the sandbox"):
            render_value(template, scope)
    assert (items, mapping) == ([1, 2], {"a": 1})


def test_reading_and_building_new_values_still_works():
    scope = {"items": [1, 2], "mapping": {"a": 1}}
    assert render("{{ items + [3] }} {{ mapping | dictsort }}", scope) == "[1, 2, 3] [('a', 1)]"
    assert render_value("{{ dict(mapping, b=2) }}", scope) == {"a": 1, "b": 2}
    assert render_value("{{ 'ab' * 3 }}", scope) == "ababab"
    assert render_value("{{ 2 ** 10 }}", scope) == 1024


def test_output_at_the_limit_renders_and_past_it_is_an_error():
    exactly = "{{ 'x' * n }}"
    assert len(render(exactly, {"n": MAX_RENDERED_LENGTH})) == MAX_RENDERED_LENGTH
    with pytest.raises(TemplateProblem, match="longer than the 100000 a template may produce"):
        render(exactly, {"n": MAX_RENDERED_LENGTH + 1})
    with pytest.raises(TemplateProblem, match=r"longer than MAX_RENDERED_LENGTH \(100000"):
        render("{% for i in range(n) %}xx{% endfor %}", {"n": MAX_RENDERED_LENGTH})


def test_a_runaway_loop_stops_at_the_limit_instead_of_running_on():
    # 10^10 iterations if rendered whole: the chunked rendering stops after ~10^5.
    template = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    with pytest.raises(TemplateProblem, match="render less"):
        render(template, {})


def test_huge_values_are_refused_before_they_are_built():
    with pytest.raises(TemplateProblem, match="repetition of 1000000000 items"):
        render_value("{{ 'x' * 10 ** 9 }}", {})
    with pytest.raises(TemplateProblem, match="too large for a template"):
        render("{{ 9 ** 9 ** 9 ** 9 }}", {})  # Jinja: left to right; the third is refused
    with pytest.raises(TemplateProblem, match=r"as JSON\)"):
        render_value("{{ range(100000) | list }}", {})


# In a fresh interpreter: this one may have loaded jinja2 already.
LOADS_JINJA = """
import sys
from stratoflow.automations.models import Automation, EventTrigger, RunDeployment
from stratoflow.automations.templates import render, render_value

def made(parameters):
    action = RunDeployment(deployment="etl", parameters=parameters)
    Automation(name="a", trigger=EventTrigger(expect=["x"]), actions=[action])
    return "jinja2" in sys.modules

plain = made({"day": "monday", "n": 1})
rendered = render("no braces", {}) == "no braces" and render_value(["a", 1], {}) == ["a", 1]
print(plain, rendered and "jinja2" in sys.modules, made({"day": "{{ event.id }}"}))
"""


def test_jinja2_loads_with_the_first_template_not_with_the_models():
    """The automations Lambda's cold start (bench/cold_start.py): a definition or a value
    without `{` is no template, and needs no Jinja."""
    output = subprocess.run(
        [sys.executable, "-c", LOADS_JINJA], check=True, capture_output=True, text=True
    ).stdout
    assert output.split() == ["False", "False", "True"]
