"""Prefect's `prefect.events.schemas` paths: `events` (Event, Resource, ...) and
`automations` (EventTrigger, CompoundTrigger, SequenceTrigger, Posture, Automation).

Importing a submodule loads only what it needs: `automations` loads the automations
package, `events` does not.
"""
