"""What Prefect's filters test, shared by the filter classes of `filters.py`.

A filter here is a pydantic model as in Prefect; each value filter (`any_`, `like_`,
`before_`, ...) has `matches(value)`, and each filter of several criteria combines its
criteria with `operator` (`and_` by default, or `or_`). A field Prefect has and stratoflow
cannot test is refused with the list of those it can, never ignored: a criterion left out
would return objects the caller did not ask for.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, model_validator

from stratoflow.exceptions import StratoflowError
from stratoflow.states import StateType


class UnsupportedFilter(StratoflowError, ValueError):
    """A filter asks for a criterion stratoflow cannot apply where it is used."""


def _as_text(value: object) -> object:
    # Prefect's ids are UUIDs; stratoflow's are their text (a deployment's is its name).
    return str(value) if value is not None and not isinstance(value, str | bytes) else value


def _aware(moment: datetime) -> datetime:
    # Stored times are aware (UTC); a naive time given to a filter is taken as UTC.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


Id = Annotated[str, BeforeValidator(_as_text)]
"""An id, given as a UUID or its text."""
Moment = Annotated[datetime, AfterValidator(_aware)]


class Operator(enum.StrEnum):
    """How a filter combines its criteria (Prefect's `Operator`)."""

    and_ = "and_"
    or_ = "or_"


class Filter(BaseModel):
    model_config = ConfigDict(frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_fields(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = sorted(str(name) for name in set(data) - set(cls.model_fields))
            if unknown:
                raise ValueError(
                    f"stratoflow's {cls.__name__} has no {', '.join(unknown)}; it filters "
                    f"on {', '.join(cls.model_fields)} (docs/sdk.md, 'Client')"
                )
        return data


class ValueFilter(Filter):
    """Tests one value. Each subclass declares the operators Prefect gives it: `any_`,
    `not_any_`, `like_` (a case-insensitive substring), `startswith_`, `is_null_`,
    `exists_`, `eq_`; those it does not declare are never set."""

    def matches(self, value: object) -> bool:
        text = None if value is None else str(value)
        any_ = getattr(self, "any_", None)
        not_any_ = getattr(self, "not_any_", None)
        like_ = getattr(self, "like_", None)
        startswith_ = getattr(self, "startswith_", None)
        present = getattr(self, "exists_", None)
        if present is None:
            null = getattr(self, "is_null_", None)
            present = None if null is None else not null
        eq_ = getattr(self, "eq_", None)
        return (
            (any_ is None or text in {str(v) for v in any_})
            and (not_any_ is None or text not in {str(v) for v in not_any_})
            and (like_ is None or (text is not None and like_.lower() in text.lower()))
            and (startswith_ is None or (text is not None and text.startswith(tuple(startswith_))))
            and (present is None or (value is not None) == present)
            and (eq_ is None or value == eq_)
        )


class TagsFilter(Filter):
    """Tests a collection of tags: `all_` of them, `any_` of them, or none (`is_null_`)."""

    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None
    operator: Operator = Operator.and_

    def matches(self, value: Iterable[str] | None) -> bool:
        tags = set(value or ())
        results = [
            result
            for given, result in (
                (self.all_, self.all_ is not None and set(self.all_) <= tags),
                (self.any_, self.any_ is not None and bool(set(self.any_) & tags)),
                (self.is_null_, self.is_null_ is not None and (not tags) == self.is_null_),
            )
            if given is not None
        ]
        return _combine(results, self.operator)


class TimeFilter(Filter):
    """Tests a time: at or `before_`, at or `after_`, or unset (`is_null_`)."""

    before_: Moment | None = None
    after_: Moment | None = None
    is_null_: bool | None = None

    def matches(self, value: datetime | None) -> bool:
        if self.is_null_ is not None and (value is None) != self.is_null_:
            return False
        if value is None:
            return self.before_ is None and self.after_ is None
        moment = _aware(value)
        return (self.before_ is None or moment <= self.before_) and (
            self.after_ is None or moment >= self.after_
        )


class RangeFilter(Filter):
    """Tests a number: at least `ge_`, at most `le_`."""

    ge_: int | None = None
    le_: int | None = None

    def matches(self, value: int | None) -> bool:
        if value is None:
            return self.ge_ is None and self.le_ is None
        return (self.ge_ is None or value >= self.ge_) and (self.le_ is None or value <= self.le_)


# Value filters by the operators Prefect gives them (`filters.py` names them per field)


class IdsIn(ValueFilter):
    any_: list[Id] | None = None


class IdsInOrNot(ValueFilter):
    any_: list[Id] | None = None
    not_any_: list[Id] | None = None


class IdsOrNull(ValueFilter):
    any_: list[Id] | None = None
    is_null_: bool | None = None


class Names(ValueFilter):
    any_: list[str] | None = None
    like_: str | None = None


class NamesInOrNot(ValueFilter):
    any_: list[str] | None = None
    not_any_: list[str] | None = None


class NamesOrNull(ValueFilter):
    any_: list[str] | None = None
    is_null_: bool | None = None


class StateTypes(ValueFilter):
    any_: list[StateType] | None = None
    not_any_: list[StateType] | None = None


class Criteria(Filter):
    """A filter of several criteria, each a filter of one attribute of the object
    filtered (`ATTRIBUTES`: field -> attribute), combined by `operator`."""

    ATTRIBUTES: ClassVar[Mapping[str, str]]

    operator: Operator = Operator.and_

    def matches(self, obj: object) -> bool:
        # No object (a run without a state yet): every attribute is missing.
        return self.matches_values(
            {
                field: None if obj is None else getattr(obj, attr)
                for field, attr in self.ATTRIBUTES.items()
            }
        )

    def matches_values(self, values: Mapping[str, Any]) -> bool:
        """Test given values (field -> value) instead of an object's attributes; a
        criterion set on a field that `values` lacks is refused, not skipped."""
        results = []
        for field in self.ATTRIBUTES:
            criterion = getattr(self, field)
            if criterion is None:
                continue
            if field not in values:
                raise UnsupportedFilter(
                    f"{type(self).__name__}.{field} cannot be applied here; filter on "
                    f"{', '.join(values) or 'nothing else'}."
                )
            results.append(criterion.matches(values[field]))
        return _combine(results, self.operator)

    def set_fields(self) -> set[str]:
        return {field for field in self.ATTRIBUTES if getattr(self, field) is not None}


def _combine(results: list[bool], operator: Operator) -> bool:
    if not results:
        return True
    return any(results) if operator is Operator.or_ else all(results)


def exact_values(criterion: ValueFilter | None) -> set[str] | None:
    """The values a criterion admits when it is an `any_` list and nothing else (for
    choosing an index), else None."""
    if criterion is None:
        return None
    others = {k: v for k, v in criterion if k != "any_" and v is not None}
    any_ = getattr(criterion, "any_", None)
    if others or any_ is None:
        return None
    return {str(v) for v in any_}


def pinned(criteria: Criteria | None, field: str) -> set[str] | None:
    """The only values `criteria.<field>` admits when the criteria require them (an
    `any_` list, under `and_`), else None: the caller may read just those."""
    if criteria is None or criteria.operator is not Operator.and_:
        return None
    return exact_values(getattr(criteria, field))
