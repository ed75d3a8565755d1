"""Creating and deleting the keys that sign pickled results (read by
`result_keys.ParameterStoreResultKeys`). The emulator's provisioning (`strato dev`, the
tests) and the stack's custom resource (`functions/result_keys/handler.py`) both call
this, so an installation gets the same parameter whichever made it.

A key is 32 random bytes (`secrets.token_bytes`) in base64: its 44 characters are the
HMAC key. It is put as a SecureString parameter of the standard tier (no charge;
encrypted under the account's `aws/ssm` key) with `Overwrite=False`, so an existing key
is never replaced: a retained parameter, a second deploy or `provision` run again keep
it, and every result signed under it keeps verifying. The tier is given rather than left
to the account's default tier setting, which may be Advanced (billed).

Upgrading from a version that kept the key in a Secrets Manager secret
(`result_key_secret_name`): the new parameter is made from the secret's values instead
of a random one, its AWSPREVIOUS value (if it was ever rotated) as version 1 and its
AWSCURRENT value as the latest version, so results signed before the upgrade, and before
the secret's last rotation, verify as they did. The stack's deploy creates the
parameters before CloudFormation deletes the secrets it no longer has (its clean-up
phase comes last), so the secrets are still there to copy.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from botocore.exceptions import ClientError

from stratoflow.backends.aws.result_keys import MIN_KEY_CHARACTERS
from stratoflow.resources import result_key_parameter_name, result_key_secret_name

KEY_BYTES = 32
PARAMETER_TIER = "Standard"
_NO_SECRET = frozenset({"ResourceNotFoundException", "InvalidRequestException"})
"""A secret that does not exist (or lacks that stage), or is scheduled for deletion."""


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def create_result_key(ssm: Any, secretsmanager: Any, prefix: str, domain: str) -> bool:
    """Create the domain's key parameter, from the secret of an earlier version when
    there is one, else random; False (and nothing changed) when it exists already."""
    name = result_key_parameter_name(prefix, domain)
    values = earlier_values(secretsmanager, prefix, domain) or [new_key()]
    for version, value in enumerate(values, start=1):
        try:
            ssm.put_parameter(
                Name=name,
                Value=value,
                Type="SecureString",
                Tier=PARAMETER_TIER,
                Description=f"stratoflow: signs the pickled results of {domain}",
                # Only the copy of an earlier secret's current value may add a version,
                # to the parameter this call has just created.
                Overwrite=version > 1,
            )
        except ClientError as exc:
            if version == 1 and exc.response.get("Error", {}).get("Code") == (
                "ParameterAlreadyExists"
            ):
                return False
            raise
    return True


def earlier_values(secretsmanager: Any, prefix: str, domain: str) -> list[str]:
    """The values of the domain's Secrets Manager secret of an earlier version, oldest
    first (AWSPREVIOUS if any, then AWSCURRENT); [] when there is no usable secret."""
    secret = result_key_secret_name(prefix, domain)
    found: dict[str, str] = {}
    for stage in ("AWSPREVIOUS", "AWSCURRENT"):
        try:
            response = secretsmanager.get_secret_value(SecretId=secret, VersionStage=stage)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _NO_SECRET:
                continue
            raise
        value = response.get("SecretString")
        if isinstance(value, str) and len(value) >= MIN_KEY_CHARACTERS:
            found[stage] = value
    if "AWSCURRENT" not in found:
        return []  # nothing that signs today: a new key
    return list(found.values())


def delete_result_key(ssm: Any, name: str) -> bool:
    """Delete a key parameter (all its versions); False when it did not exist."""
    try:
        ssm.delete_parameter(Name=name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return False
        raise
    return True
