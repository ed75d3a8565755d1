"""A mapped fan-out: one task run per item, then a reduce over the futures."""

from __future__ import annotations

from stratoflow import flow, task, unmapped


@task
def score(item: int, weight: int) -> int:
    return item * item * weight


@task
def total(scores: list[int]) -> int:
    return sum(scores)


@flow
def fan_out(items: int = 8, weight: int = 2) -> int:
    scores = score.map(range(items), unmapped(weight))
    return total(scores)


if __name__ == "__main__":
    print(fan_out())
