"""Signatures of pickled results (stratoflow.result_signing): pure, no I/O."""

from __future__ import annotations

import cloudpickle
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stratoflow.exceptions import ResultRefused
from stratoflow.result_signing import (
    ResultSigner,
    ResultVerifier,
    StaticKeys,
    signer_of,
)
from stratoflow.results import (
    LocalFileSystemResultStore,
    PickleNotAllowed,
    ResultRecord,
    persist,
    serialize,
)

KEYS = StaticKeys({"etl": b"k" * 40, "gpu": b"g" * 40})
DATA = bytes(cloudpickle.dumps((1, 2)))


def _sign(domain: str = "etl", key: str = "run/flow", data: bytes = DATA) -> str:
    return ResultSigner(KEYS, domain).sign(serializer="cloudpickle", key=key, data=data)


def _verify(signature: str | None, *, key: str = "run/flow", data: bytes = DATA) -> str:
    return ResultVerifier(KEYS).verify(
        signature, serializer="cloudpickle", key=key, data=data, what="Flow run r"
    )


def test_a_signature_names_its_domain_and_verifies() -> None:
    signature = _sign()
    assert signature.startswith("v1:etl:")
    assert signer_of(signature) == "etl"
    assert _verify(signature) == "etl"


@given(flipped=st.integers(min_value=0, max_value=len(DATA) - 1))
def test_any_changed_byte_is_refused(flipped: int) -> None:
    tampered = bytearray(DATA)
    tampered[flipped] ^= 0x01
    with pytest.raises(ResultRefused, match="does not match its bytes"):
        _verify(_sign(), data=bytes(tampered))


def test_a_signature_is_bound_to_its_key_and_domain() -> None:
    with pytest.raises(ResultRefused, match="does not match"):
        _verify(_sign(key="other-run/flow"))
    forged = _sign(domain="gpu").replace("v1:gpu:", "v1:etl:")
    with pytest.raises(ResultRefused, match="does not match"):
        _verify(forged)


def test_a_non_ascii_digest_is_refused_not_an_error() -> None:
    with pytest.raises(ResultRefused, match="does not match"):
        _verify("v1:etl:\u00e9\u00e9")


@pytest.mark.parametrize(
    "signature", [None, "", "abc", "v2:etl:00", "v1::00", "v1:etl", "v1:../x:00", "v1:arn/x:00"]
)
def test_unsigned_or_malformed_is_refused_with_how_to_fix(signature: str | None) -> None:
    with pytest.raises(ResultRefused) as refused:
        _verify(signature)
    message = str(refused.value)
    assert message.startswith("Flow run r: its pickled result is not signed")
    assert "run the flow again" in message


def test_a_domain_whose_key_is_not_readable_is_refused() -> None:
    signature = ResultSigner(StaticKeys({"other": b"o" * 40}), "other").sign(
        serializer="cloudpickle", key="run/flow", data=DATA
    )
    with pytest.raises(ResultRefused, match="signed by 'other', whose key this process cannot"):
        _verify(signature)


def test_a_signature_under_the_previous_key_verifies_after_rotation() -> None:
    old = _sign()
    rotated = StaticKeys({"etl": b"n" * 40}, previous={"etl": b"k" * 40})
    verifier = ResultVerifier(rotated)
    assert verifier.verify(old, serializer="cloudpickle", key="run/flow", data=DATA, what="r")
    signer = ResultSigner(rotated, "etl")
    new = signer.sign(serializer="cloudpickle", key="run/flow", data=DATA)
    assert new != old
    assert _verify(old) == "etl"
    with pytest.raises(ResultRefused):
        _verify(new)  # KEYS does not know the new key


def test_pickles_are_opt_in_when_not_allowed() -> None:
    assert serialize({"a": [1]}, pickle_allowed=False)[0] == "json"
    with pytest.raises(PickleNotAllowed) as refused:
        serialize((1, 2), pickle_allowed=False)
    assert "result_serializer='cloudpickle'" in str(refused.value)
    assert "pickle_results: true" in str(refused.value)
    # An explicit serializer is the opt-in itself.
    assert serialize((1, 2), "cloudpickle", pickle_allowed=False)[0] == "cloudpickle"


def test_persist_signs_pickles_only(tmp_path: object) -> None:
    store = LocalFileSystemResultStore(str(tmp_path))
    signer = ResultSigner(KEYS, "etl")
    pickled = persist((1, 2), store, key="r/flow", signer=signer, inline_max_bytes=1000)
    assert pickled.signature is not None and signer_of(pickled.signature) == "etl"
    as_json = persist([1, 2], store, key="r/json", signer=signer)
    assert as_json.signature is None


def test_a_stored_record_is_verified_before_it_is_unpickled() -> None:
    verifier = ResultVerifier(KEYS)
    good = ResultRecord(
        store=None,
        key="run/flow",
        serializer="cloudpickle",
        inline=DATA,
        signature=_sign(),
        verifier=verifier,
        owner="Flow run r",
    )
    assert good.load() == (1, 2)
    assert good.verify() == "etl"
    unsigned = ResultRecord(
        store=None, key="run/flow", serializer="cloudpickle", inline=DATA, verifier=verifier
    )
    with pytest.raises(ResultRefused, match="not signed"):
        unsigned.load()
