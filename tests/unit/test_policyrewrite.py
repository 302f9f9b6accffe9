"""Unit tests for pipeline.policyrewrite: source-region ARNs in policy documents become the
destination's, with a report of each rewrite."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.errors import EventValidationError
from pipeline.policyrewrite import (
    ArnMapping,
    DuplicateKeyError,
    Rewrite,
    canonical_document,
    duplicate_keys,
    parse_mapping,
    refuse_duplicate_keys,
    rewrite_policy_document,
)

SOURCE, DEST = "us-east-1", "eu-west-1"
ACCOUNT, OTHER_ACCOUNT = "111111111111", "222222222222"
REGIONS = ArnMapping({SOURCE: DEST})


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_region_is_rewritten_in_every_iot_arn_and_reported() -> None:
    # GIVEN a device policy naming the source region in a string and in a list
    document = doc(
        {
            "Effect": "Allow",
            "Action": "iot:Connect",
            "Resource": f"arn:aws:iot:{SOURCE}:{ACCOUNT}:client/${{iot:ClientId}}",
        },
        {
            "Effect": "Allow",
            "Action": ["iot:Publish", "iot:Receive"],
            "Resource": [
                f"arn:aws:iot:{SOURCE}:{ACCOUNT}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/*",
                f"arn:aws:iot:{SOURCE}:{ACCOUNT}:topic/telemetry",
            ],
        },
    )
    # WHEN rewritten for the destination
    result = rewrite_policy_document(document, REGIONS)
    # THEN every ARN names the destination region, policy variables untouched
    decoded = json.loads(result.document)
    assert decoded["Statement"][0]["Resource"] == (
        f"arn:aws:iot:{DEST}:{ACCOUNT}:client/${{iot:ClientId}}"
    )
    assert decoded["Statement"][1]["Resource"] == [
        f"arn:aws:iot:{DEST}:{ACCOUNT}:topic/$aws/things/${{iot:Connection.Thing.ThingName}}/*",
        f"arn:aws:iot:{DEST}:{ACCOUNT}:topic/telemetry",
    ]
    # AND each rewrite is reported with where it was
    assert [r.path for r in result.rewrites] == [
        "Statement[0].Resource",
        "Statement[1].Resource[0]",
        "Statement[1].Resource[1]",
    ]
    assert result.rewrites[2] == Rewrite(
        "Statement[1].Resource[1]",
        f"arn:aws:iot:{SOURCE}:{ACCOUNT}:topic/telemetry",
        f"arn:aws:iot:{DEST}:{ACCOUNT}:topic/telemetry",
    )
    assert result.changed and result.foreign == ()


def test_account_is_rewritten_only_when_mapped() -> None:
    document = doc(
        {"Effect": "Allow", "Action": "iot:*", "Resource": f"arn:aws:iot:{SOURCE}:{ACCOUNT}:*"}
    )
    same = rewrite_policy_document(document, REGIONS)
    other = rewrite_policy_document(
        document, ArnMapping({SOURCE: DEST}, accounts={ACCOUNT: OTHER_ACCOUNT})
    )
    assert (
        json.loads(same.document)["Statement"][0]["Resource"] == f"arn:aws:iot:{DEST}:{ACCOUNT}:*"
    )
    assert json.loads(other.document)["Statement"][0]["Resource"] == (
        f"arn:aws:iot:{DEST}:{OTHER_ACCOUNT}:*"
    )


def test_wildcards_other_services_and_conditions() -> None:
    document = doc(
        {
            "Effect": "Allow",
            "Action": "iot:Subscribe",
            "Resource": "arn:aws:iot:*:*:topicfilter/alerts/*",
        },
        {
            "Effect": "Allow",
            "Action": "iot:AssumeRoleWithCertificate",
            "Resource": f"arn:aws:iot:{SOURCE}:{ACCOUNT}:rolealias/uploader",
            "Condition": {
                "ArnEquals": {"iot:SourceArn": f"arn:aws:iot:{SOURCE}:{ACCOUNT}:thing/gw"},
                "StringEquals": {"aws:SourceArn": f"arn:aws:s3:::bucket-{SOURCE}"},
            },
        },
    )
    result = rewrite_policy_document(document, REGIONS)
    decoded = json.loads(result.document)
    assert decoded["Statement"][0]["Resource"] == "arn:aws:iot:*:*:topicfilter/alerts/*"
    assert decoded["Statement"][1]["Condition"]["ArnEquals"]["iot:SourceArn"] == (
        f"arn:aws:iot:{DEST}:{ACCOUNT}:thing/gw"
    )
    # Only IoT ARNs are in scope; an S3 bucket name mentioning the region is not an ARN region.
    assert decoded["Statement"][1]["Condition"]["StringEquals"]["aws:SourceArn"] == (
        f"arn:aws:s3:::bucket-{SOURCE}"
    )
    assert len(result.rewrites) == 2


def test_a_third_region_is_kept_and_listed_as_foreign() -> None:
    third = "arn:aws:iot:ap-south-1:111111111111:topic/x"
    result = rewrite_policy_document(
        doc({"Effect": "Allow", "Action": "iot:Publish", "Resource": third}),
        REGIONS,
    )
    assert not result.changed
    assert result.foreign == (third,)


def test_result_is_canonical_json() -> None:
    document = '{\n  "Version": "2012-10-17",\n  "Statement": []\n}'
    result = rewrite_policy_document(document, REGIONS)
    assert result.document == '{"Statement":[],"Version":"2012-10-17"}'
    assert result.document == canonical_document(document)


def test_rewrite_is_idempotent() -> None:
    document = doc(
        {"Effect": "Allow", "Action": "iot:*", "Resource": f"arn:aws:iot:{SOURCE}:{ACCOUNT}:*"}
    )
    mapping = REGIONS
    once = rewrite_policy_document(document, mapping)
    twice = rewrite_policy_document(once.document, mapping)
    assert twice.document == once.document and not twice.changed


@pytest.mark.parametrize("document", ["not json", "[]", '"text"'])
def test_a_document_that_is_not_a_json_object_is_refused(document: str) -> None:
    with pytest.raises(EventValidationError, match="policyDocument"):
        rewrite_policy_document(document, REGIONS)


def test_parse_mapping() -> None:
    pairs = parse_mapping(f"{SOURCE}={DEST}, {ACCOUNT}={OTHER_ACCOUNT}")
    assert pairs == {SOURCE: DEST, ACCOUNT: OTHER_ACCOUNT}
    assert parse_mapping("") == {}


@pytest.mark.parametrize(
    "text", ["us-east-1", "us-east-1=1234", "us-east-1=eu-west-1,us-east-1=eu-west-2", "a=b"]
)
def test_parse_mapping_refuses_nonsense(text: str) -> None:
    with pytest.raises(EventValidationError, match="mapping"):
        parse_mapping(text)


# --- repeated keys: ambiguous, reported by the shared parse, refused by the pipeline ------------


def test_repeated_keys_are_named_by_path_in_document_order() -> None:
    document = (
        '{"Version":"2012-10-17","Version":"2008-10-17","Statement":[{"Effect":"Allow"},'
        '{"Effect":"Deny","Condition":{"StringEquals":{"iot:ClientId":"a","iot:ClientId":"b"}},'
        '"Effect":"Allow"}]}'
    )
    assert duplicate_keys(document) == (
        "Version",
        "Statement[1].Condition.StringEquals.iot:ClientId",
        "Statement[1].Effect",
    )
    assert duplicate_keys(doc({"Effect": "Allow"})) == ()
    assert duplicate_keys("not json") == ()


def test_the_shared_parse_keeps_an_ambiguous_document_as_written_and_never_raises() -> None:
    # GIVEN a statement whose text says Deny, then Allow (Python's parser keeps the last)
    ambiguous = (
        '{"Statement":[{"Effect":"Deny","Action":"iot:*",'
        f'"Resource":"arn:aws:iot:{SOURCE}:{ACCOUNT}:topic/t","Effect":"Allow"}}]}}'
    )
    # THEN no canonical form picks a value for it, and the rewrite leaves it as written, naming
    # the repeated key (the audit reports it; the replicator refuses it)
    assert canonical_document(ambiguous) == ambiguous
    result = rewrite_policy_document(ambiguous, REGIONS)
    assert result.document == ambiguous
    assert (result.rewrites, result.duplicate_keys) == ((), ("Statement[0].Effect",))


def test_the_pipeline_refuses_an_ambiguous_document_naming_the_policy_and_the_key() -> None:
    ambiguous = '{"Statement":[],"Statement":[{"Effect":"Allow","Action":"iot:*"}]}'
    with pytest.raises(DuplicateKeyError, match="policy device's document repeats the key Stat"):
        refuse_duplicate_keys("policyDocument", ambiguous, policy="device")
    refuse_duplicate_keys("policyDocument", doc({"Effect": "Allow"}), policy="device")
