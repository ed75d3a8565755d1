"""Automations: when events match a trigger, run actions (as Prefect 3's).

    from stratoflow.automations import Automation, EventTrigger, CancelFlowRun, create_automation

    create_automation(
        Automation(
            name="cancel-stuck-runs",
            trigger=EventTrigger(
                after=["stratoflow.flow-run.Running"],
                expect=["stratoflow.flow-run.Completed", "stratoflow.flow-run.Failed"],
                for_each=["stratoflow.resource.id"],
                posture="Proactive",
                within=3600,
            ),
            actions=[CancelFlowRun()],
        )
    )

See docs/automations.md.
"""

from stratoflow.automations.actions import (
    ActionContext,
    ActionExecutor,
    ActionRunner,
)
from stratoflow.automations.api import (
    automation_store,
    create_automation,
    delete_automation,
    list_automations,
    pause_automation,
    read_automation,
    read_automation_record,
    resume_automation,
)
from stratoflow.automations.engine import ActionResult, AutomationEngine, Firing
from stratoflow.automations.loading import (
    AutomationDefinitionError,
    load_automations,
    parse_automations,
)
from stratoflow.automations.memory import MemoryAutomationStore
from stratoflow.automations.models import (
    Action,
    Automation,
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    CompoundTrigger,
    DoNothing,
    EventTrigger,
    PauseAutomation,
    PauseDeployment,
    PauseWorkQueue,
    ResumeAutomation,
    ResumeDeployment,
    ResumeFlowRun,
    ResumeWorkQueue,
    RunDeployment,
    SendNotification,
    SequenceTrigger,
    Trigger,
)
from stratoflow.automations.secrets import SecretError, SecretRef
from stratoflow.automations.store import (
    AutomationRecord,
    AutomationStore,
    DuplicateAutomationName,
    UnknownAutomation,
)
from stratoflow.automations.webhooks import ActionError, WebhookNotAllowed, WebhookRequest

__all__ = [
    "Action",
    "ActionContext",
    "ActionError",
    "ActionExecutor",
    "ActionResult",
    "ActionRunner",
    "Automation",
    "AutomationDefinitionError",
    "AutomationEngine",
    "AutomationRecord",
    "AutomationStore",
    "CallWebhook",
    "CancelFlowRun",
    "ChangeFlowRunState",
    "CompoundTrigger",
    "DoNothing",
    "DuplicateAutomationName",
    "EventTrigger",
    "Firing",
    "MemoryAutomationStore",
    "PauseAutomation",
    "PauseDeployment",
    "PauseWorkQueue",
    "ResumeAutomation",
    "ResumeDeployment",
    "ResumeFlowRun",
    "ResumeWorkQueue",
    "RunDeployment",
    "SecretError",
    "SecretRef",
    "SendNotification",
    "SequenceTrigger",
    "Trigger",
    "UnknownAutomation",
    "WebhookNotAllowed",
    "WebhookRequest",
    "automation_store",
    "create_automation",
    "delete_automation",
    "list_automations",
    "load_automations",
    "parse_automations",
    "pause_automation",
    "read_automation",
    "read_automation_record",
    "resume_automation",
]
