"""`@my_flow.on_failure`, `@my_task.on_completion`, ...: registering a state hook with a
decorator, as in Prefect 3. Mixed into `Flow` and `Task` (frozen dataclasses with
`options`): registering replaces the options with a copy holding the hook."""

from __future__ import annotations

from typing import Any

from stratoflow._options import Hook, with_hook


class StateHookDecorators:
    """The hooks flows and tasks share; `Flow` adds cancellation and crash hooks."""

    options: Any

    def on_completion(self, fn: Hook) -> Hook:
        return self._add_hook("on_completion", fn)

    def on_failure(self, fn: Hook) -> Hook:
        return self._add_hook("on_failure", fn)

    def on_running(self, fn: Hook) -> Hook:
        return self._add_hook("on_running", fn)

    @property
    def on_completion_hooks(self) -> list[Hook]:
        return list(self.options.on_completion)

    @property
    def on_failure_hooks(self) -> list[Hook]:
        return list(self.options.on_failure)

    @property
    def on_running_hooks(self) -> list[Hook]:
        return list(self.options.on_running)

    def _add_hook(self, kind: str, fn: Hook) -> Hook:
        object.__setattr__(self, "options", with_hook(self.options, kind, fn))
        return fn
