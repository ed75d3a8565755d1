"""Prefect's `prefect.utilities.*` paths: `stratoflow.utilities.annotations`."""
