"""Artifacts: markdown, tables, links, progress and images that runs publish (Prefect 3's
`prefect.artifacts`, same names and parameters).

    from stratoflow.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact("# Report\nAll rows loaded.", key="daily-report")
    create_table_artifact([{"region": "eu", "rows": 10}], key="row-counts")

Created inside a flow or task run, an artifact is linked to it. Artifacts with the same
key are versions of one artifact; `Artifact.get(key)` returns the newest. Keys are
lowercase letters, numbers and dashes. Storage, limits and the CLI (`strato artifact
ls|inspect`): docs/artifacts-and-variables.md.
"""

from stratoflow.artifacts.core import (
    Artifact,
    ImageArtifact,
    LinkArtifact,
    MarkdownArtifact,
    ProgressArtifact,
    TableArtifact,
)
from stratoflow.artifacts.helpers import (
    acreate_image_artifact,
    acreate_link_artifact,
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from stratoflow.artifacts.queries import list_artifacts, read_artifact
from stratoflow.records import ArtifactRecord, InvalidArtifactError

__all__ = [
    "Artifact",
    "ArtifactRecord",
    "ImageArtifact",
    "InvalidArtifactError",
    "LinkArtifact",
    "MarkdownArtifact",
    "ProgressArtifact",
    "TableArtifact",
    "acreate_image_artifact",
    "acreate_link_artifact",
    "acreate_markdown_artifact",
    "acreate_progress_artifact",
    "acreate_table_artifact",
    "aupdate_progress_artifact",
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "list_artifacts",
    "read_artifact",
    "update_progress_artifact",
]
