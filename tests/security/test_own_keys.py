"""The key check every index reader shares (stratoflow.backends.aws.own_keys): what it
keeps, what it drops, and that its warning stays bounded whatever an attacker writes."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from stratoflow import resources
from stratoflow.backends.aws.items import to_item
from stratoflow.backends.aws.own_keys import SHOWN_KEYS, OwnItems, string_attribute


def by_name(item: Any) -> dict[str, str]:
    return resources.deployment_key(string_attribute(item, "name"))


def item(pk: str, sk: str = resources.META, **attributes: Any) -> dict[str, Any]:
    return to_item({"pk": pk, "sk": sk, **attributes})


def test_it_keeps_the_items_whose_key_their_content_names() -> None:
    own = OwnItems("deployment", by_name)
    genuine = item("DEPLOYMENT#a", name="a")
    assert own([genuine]) == [genuine]
    assert own.foreign == 0


@pytest.mark.parametrize(
    "foreign",
    [
        item("FLOWRUN#evil", name="evil"),  # another partition
        item("DEPLOYMENT#a", "OTHER", name="a"),  # another sort key
        item("DEPLOYMENT#a", name="b"),  # a name that is not its key's
        item("DEPLOYMENT#a"),  # no name
        item("DEPLOYMENT#a", name=3),  # not a string
        {"sk": {"S": "META"}, "name": {"S": "a"}},  # no partition key
    ],
    ids=["partition", "sort-key", "other-name", "no-name", "number", "no-pk"],
)
def test_it_drops_anything_else(foreign: dict[str, Any]) -> None:
    own = OwnItems("deployment", by_name)
    assert own([foreign]) == []
    assert own.foreign == 1


def test_an_invalid_document_is_foreign_not_an_error() -> None:
    def from_document(item: Any) -> dict[str, str]:
        raise ValueError("not a deployment")

    assert OwnItems("deployment", from_document)([item("DEPLOYMENT#a")]) == []


def test_one_bounded_warning_per_listing(caplog: pytest.LogCaptureFixture) -> None:
    forged = [item(f"FLOWRUN#{n}" + "x" * 5000, name="a") for n in range(1000)]
    with caplog.at_level(logging.WARNING), OwnItems("deployment", by_name) as own:
        for start in range(0, len(forged), 100):  # pages
            assert own(forged[start : start + 100]) == []
    (record,) = caplog.records
    message = record.getMessage()
    assert message.count("FLOWRUN#") == SHOWN_KEYS
    assert "Ignored 1000 item(s)" in message and f"and {1000 - SHOWN_KEYS} more" in message
    assert len(message) < 1000


def test_no_warning_when_everything_is_genuine(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), OwnItems("deployment", by_name) as own:
        own([item("DEPLOYMENT#a", name="a")])
    assert caplog.records == []
