"""`prefect.utilities.annotations` under its Prefect path; the wrappers live in
`stratoflow.annotations`."""

from stratoflow.annotations import allow_failure, opaque, quote, unmapped

__all__ = ["allow_failure", "opaque", "quote", "unmapped"]
