"""The flow engine's durable steps: what a later attempt replays, how an attempt stops
to wait without compute, and how a subflow call an earlier attempt made is reused
(docs/durability.md). A mixin of `FlowRunEngine`, kept apart so that the engine's own
module stays about running attempts."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

from stratoflow.durable.signals import Suspend
from stratoflow.engine.replay import ReplayHistory
from stratoflow.engine.steps import Steps
from stratoflow.engine.subflow_replay import replayed_state
from stratoflow.models import FlowRun
from stratoflow.states import AwaitingRetry, Resuming, State

if TYPE_CHECKING:
    from stratoflow._options import FlowOptions
    from stratoflow.context import Services


class DurableSteps:
    options: FlowOptions
    services: Services
    flow_run: FlowRun | None

    @property
    @abstractmethod
    def run_record(self) -> FlowRun: ...

    @abstractmethod
    def set_state(self, state: State) -> State: ...

    @abstractmethod
    def _run_existing(self, flow_run: FlowRun) -> Steps[State]: ...

    def _replay_history(self, flow_run: FlowRun) -> ReplayHistory | None:
        """The task runs earlier attempts completed, when this attempt replays them: a
        deployment's run past its first attempt, unless its flow turns replay off."""
        if flow_run.run_count < 1 or not self.options.replay:
            return None
        return ReplayHistory(
            flow_run.name,
            self.services.backend.list_task_runs(flow_run.id),
            since_attempt=flow_run.replay_since,
        )

    def _replay_subflow(self, earlier: FlowRun) -> Steps[State]:
        """A subflow call an earlier attempt of the parent made: its Completed state, or
        its next attempt (which replays its own completed task runs)."""
        done = replayed_state(earlier)
        if done is not None:
            self.flow_run = earlier
            return done
        backend = self.services.backend
        if earlier.state is not None and earlier.state.is_final():
            again = AwaitingRetry("Run again by its parent's next attempt.")
            backend.set_flow_run_state(earlier.id, again, force=True)
        return (yield from self._run_existing(backend.read_flow_run(earlier.id)))

    def _suspend(self, signal: Suspend) -> State:
        """Stop this attempt: the run waits (Suspended, Sleeping, HandedBack) and, unless
        it waits to be resumed, goes back to its queue when it should continue."""
        record = self.run_record
        if signal.key is not None:
            record.waits[signal.key] = signal.wait
        record.continuations += 1  # the next attempt continues; it is not a retry
        self.services.backend.flush()  # completed task runs are durable before it waits
        state = self.set_state(signal.state)
        hand_off = self.services.retry_handoff
        if hand_off is None:
            return state
        if signal.send_after is not None:
            hand_off(record, signal.send_after)
        elif signal.key is not None and self._answered(signal.key):
            # What it waits for came while it was suspending (an event): go on at once.
            state = self.set_state(Resuming("Resumed: what it waited for had arrived."))
            hand_off(record, 0.0)
        return state

    def _answered(self, key: str) -> bool:
        inputs = self.services.backend.run_inputs
        return inputs.read(self.run_record.id, f"{key}-response") is not None
