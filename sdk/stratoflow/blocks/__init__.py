"""Blocks: typed, named configuration saved by operators and loaded by flows, with secret
fields kept in AWS Secrets Manager (Prefect 3's blocks; docs/blocks.md).

    from stratoflow.blocks.system import Secret

    Secret(value="sk-1234567890").save("openai-key")
    Secret.load("openai-key").get()
"""

from __future__ import annotations

from stratoflow.blocks.core import Block, block_class
from stratoflow.blocks.records import (
    BlockAlreadyExists,
    BlockDocument,
    BlockError,
    BlockNotFound,
    BlockSaveDenied,
    BlockSecretsUnavailable,
)
from stratoflow.blocks.system import Secret
from stratoflow.types import SecretDict

__all__ = [
    "Block",
    "BlockAlreadyExists",
    "BlockDocument",
    "BlockError",
    "BlockNotFound",
    "BlockSaveDenied",
    "BlockSecretsUnavailable",
    "Secret",
    "SecretDict",
    "block_class",
]
