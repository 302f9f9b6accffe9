"""TestAuthorization over HTTP against the sandbox (moto has none: sandbox.emulation's
``authorization_responses`` answers it with ``authorization``'s evaluator; MOTO_GAPS).

Plain boto3 calls, as the AWS CLI or ``iot-crr`` would make them; every answer is parsed by
botocore against the IoT service model, so a field the sandbox shaped wrongly would be lost.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.certificates import self_signed_pem
from sandbox.stack import Sandbox

SOURCE = "us-east-1"
ARN = f"arn:aws:iot:{SOURCE}:123456789012"


def _document(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


DEVICE_POLICY = _document(
    {
        "Effect": "Allow",
        "Action": "iot:Connect",
        "Resource": f"{ARN}:client/${{iot:Connection.Thing.ThingName}}",
    },
    {
        "Effect": "Allow",
        "Action": "iot:Publish",
        "Resource": f"{ARN}:topic/${{iot:Connection.Thing.Attributes[site]}}/*",
    },
    {"Effect": "Deny", "Action": "iot:Publish", "Resource": f"{ARN}:topic/*/admin"},
)
GROUP_POLICY = _document(
    {
        "Effect": "Allow",
        "Action": ["iot:Subscribe", "iot:Receive"],
        "Resource": [f"{ARN}:topicfilter/fleet/*", f"{ARN}:topic/fleet/*"],
    }
)


def _device(iot: Any, name: str = "sensor-1", status: str = "ACTIVE") -> str:
    """A thing with its own certificate (attached) under the device policy; the certificate ARN."""
    iot.create_thing(thingName=name, attributePayload={"attributes": {"site": "dub"}})
    arn: str = iot.register_certificate_without_ca(
        certificatePem=self_signed_pem(name), status=status
    )["certificateArn"]
    iot.attach_thing_principal(thingName=name, principal=arn)
    if "device" not in [p["policyName"] for p in iot.list_policies()["policies"]]:
        iot.create_policy(policyName="device", policyDocument=DEVICE_POLICY)
    iot.attach_policy(policyName="device", target=arn)
    return arn


def _ask(
    iot: Any, principal: str, client_id: str | None, *infos: tuple[str, str], **extra: Any
) -> list[dict[str, Any]]:
    kwargs: dict[str, Any] = {"principal": principal, **extra}
    if client_id is not None:
        kwargs["clientId"] = client_id
    answer = iot.test_authorization(
        authInfos=[{"actionType": a, "resources": [r]} for a, r in infos], **kwargs
    )
    results: list[dict[str, Any]] = answer["authResults"]
    return results


def _decisions(results: list[dict[str, Any]]) -> list[str]:
    return [r["authDecision"] for r in results]


def _names(policies: dict[str, Any]) -> list[str]:
    return [p["policyName"] for p in policies["policies"]]


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return str(error.value.response["Error"]["Code"])


def test_aws_test_authorization_answers_each_auth_info_in_aws_shape(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    results = _ask(
        iot,
        certificate,
        "sensor-1",
        ("CONNECT", f"{ARN}:client/sensor-1"),
        ("PUBLISH", f"{ARN}:topic/dub/temperature"),
        ("PUBLISH", f"{ARN}:topic/dub/admin"),
        ("SUBSCRIBE", f"{ARN}:topicfilter/dub/temperature"),
    )
    assert _decisions(results) == ["ALLOWED", "ALLOWED", "EXPLICIT_DENY", "IMPLICIT_DENY"]
    assert results[0] == {
        "authInfo": {"actionType": "CONNECT", "resources": [f"{ARN}:client/sensor-1"]},
        "allowed": {"policies": [{"policyName": "device", "policyArn": f"{ARN}:policy/device"}]},
        "denied": {"implicitDeny": {"policies": []}, "explicitDeny": {"policies": []}},
        "authDecision": "ALLOWED",
        "missingContextValues": [],
    }
    assert _names(results[2]["denied"]["explicitDeny"]) == ["device"]
    assert _names(results[3]["denied"]["implicitDeny"]) == ["device"]


def test_aws_thing_variables_need_the_client_id_of_an_attached_thing(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    iot.create_thing(thingName="sensor-2")  # exists, but not attached to this certificate
    connect = ("CONNECT", f"{ARN}:client/sensor-2")
    results = _ask(iot, certificate, "sensor-2", connect)
    assert _decisions(results) == ["IMPLICIT_DENY"]
    assert results[0]["missingContextValues"] == ["iot:Connection.Thing.ThingName"]
    assert _decisions(_ask(iot, certificate, None, connect)) == ["IMPLICIT_DENY"]


def test_aws_thing_group_policies_are_inherited_by_the_things_of_child_groups(box: Sandbox) -> None:
    # AWS IoT Developer Guide, "Static thing groups": a parent group's policy "is inherited by its
    # child groups, and by all of the things in the group and in its child groups".
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    iot.create_thing_group(thingGroupName="fleet")
    iot.create_thing_group(thingGroupName="floor-1", parentGroupName="fleet")
    iot.add_thing_to_thing_group(thingGroupName="floor-1", thingName="sensor-1")
    iot.create_policy(policyName="fleet", policyDocument=GROUP_POLICY)
    iot.attach_policy(policyName="fleet", target=f"{ARN}:thinggroup/fleet")
    subscribe = ("SUBSCRIBE", f"{ARN}:topicfilter/fleet/alerts")
    results = _ask(iot, certificate, "sensor-1", subscribe)
    assert _decisions(results) == ["ALLOWED"]
    assert _names(results[0]["allowed"]) == ["fleet"]
    assert _names(results[0]["denied"]["implicitDeny"]) == ["device"]
    # Another client id: no thing of this certificate, so no group policy either.
    assert _decisions(_ask(iot, certificate, "someone-else", subscribe)) == ["IMPLICIT_DENY"]
    # Out of the group, out of its policy.
    iot.remove_thing_from_thing_group(thingGroupName="floor-1", thingName="sensor-1")
    assert _decisions(_ask(iot, certificate, "sensor-1", subscribe)) == ["IMPLICIT_DENY"]


@pytest.mark.parametrize("status", ["INACTIVE", "REVOKED"])
def test_aws_a_certificate_that_is_not_active_is_denied(box: Sandbox, status: str) -> None:
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    connect = ("CONNECT", f"{ARN}:client/sensor-1")
    assert _decisions(_ask(iot, certificate, "sensor-1", connect)) == ["ALLOWED"]
    iot.update_certificate(certificateId=certificate.rpartition("/")[2], newStatus=status)
    results = _ask(iot, certificate, "sensor-1", connect)
    assert _decisions(results) == ["IMPLICIT_DENY"]
    assert _names(results[0]["denied"]["implicitDeny"]) == ["device"]


def test_aws_policy_names_to_add_and_to_skip(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    iot.create_policy(policyName="fleet", policyDocument=GROUP_POLICY)
    subscribe = ("SUBSCRIBE", f"{ARN}:topicfilter/fleet/alerts")
    connect = ("CONNECT", f"{ARN}:client/sensor-1")
    added = _ask(iot, certificate, "sensor-1", subscribe, policyNamesToAdd=["fleet"])
    assert _decisions(added) == ["ALLOWED"]
    skipped = _ask(iot, certificate, "sensor-1", connect, policyNamesToSkip=["device"])
    assert _decisions(skipped) == ["IMPLICIT_DENY"]
    assert skipped[0]["denied"]["implicitDeny"]["policies"] == []


def test_aws_the_default_version_is_evaluated(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    publish = ("PUBLISH", f"{ARN}:topic/dub/temperature")
    assert _decisions(_ask(iot, certificate, "sensor-1", publish)) == ["ALLOWED"]
    iot.create_policy_version(
        policyName="device",
        policyDocument=_document({"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}),
        setAsDefault=True,
    )
    assert _decisions(_ask(iot, certificate, "sensor-1", publish)) == ["IMPLICIT_DENY"]


def test_aws_certificate_variables_come_from_the_registered_certificate(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    certificate = _device(iot, "cam-9")  # self_signed_pem: subject and issuer CN=cam-9
    iot.create_policy(
        policyName="by-common-name",
        policyDocument=_document(
            {
                "Effect": "Allow",
                "Action": "iot:Publish",
                "Resource": f"{ARN}:topic/certs/${{iot:Certificate.Subject.CommonName}}",
            }
        ),
    )
    iot.attach_policy(policyName="by-common-name", target=certificate)
    assert _decisions(_ask(iot, certificate, "cam-9", ("PUBLISH", f"{ARN}:topic/certs/cam-9"))) == [
        "ALLOWED"
    ]


# ---- refusals ----------------------------------------------------------------------------------


def test_aws_an_unknown_certificate_is_resource_not_found(box: Sandbox) -> None:
    missing = f"{ARN}:cert/{'0' * 64}"
    with pytest.raises(ClientError) as error:
        _ask(box.iot(SOURCE), missing, None, ("CONNECT", f"{ARN}:client/c"))
    assert _code(error) == "ResourceNotFoundException"
    assert box.refusals["test_authorization_unknown_principal"] == 1


def test_aws_an_auth_info_without_action_type_is_refused(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    with pytest.raises(ClientError) as error:
        iot.test_authorization(
            principal=certificate, authInfos=[{"resources": [f"{ARN}:client/c"]}]
        )
    assert _code(error) == "InvalidRequestException"


def test_aws_more_than_ten_auth_infos_are_refused(box: Sandbox) -> None:
    # botocore checks the minimum (1) before sending, not the maximum (10).
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    infos = [("CONNECT", f"{ARN}:client/c{i}") for i in range(11)]
    with pytest.raises(ClientError) as error:
        _ask(iot, certificate, "sensor-1", *infos)
    assert _code(error) == "InvalidRequestException"
    assert len(_ask(iot, certificate, "sensor-1", *infos[:10])) == 10


@pytest.mark.parametrize(
    ("request_", "why"),
    [
        ({"authInfos": [{"actionType": "CONNECT", "resources": ["a", "b"]}]}, "2 resources"),
        ({"authInfos": [{"actionType": "CONNECT", "resources": [f"{ARN}:topic/t"]}]}, "client ARN"),
        ({"principal": f"{ARN}:thinggroup/fleet"}, "only certificate ARNs"),
        ({"cognitoIdentityPoolId": "us-east-1:pool"}, "Cognito"),
        ({"policyNamesToAdd": ["nope"]}, "does not exist"),
    ],
)
def test_sandbox_refuses_what_it_does_not_know_aws_answer_to(
    box: Sandbox, request_: dict[str, Any], why: str
) -> None:
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    kwargs = {
        "principal": certificate,
        "authInfos": [{"actionType": "CONNECT", "resources": [f"{ARN}:client/c"]}],
    }
    with pytest.raises(ClientError) as error:
        iot.test_authorization(**{**kwargs, **request_})
    assert _code(error) == "SandboxCannotEvaluate"
    assert why in str(error.value)


def test_sandbox_refuses_a_policy_it_cannot_evaluate_never_allows_it(box: Sandbox) -> None:
    iot = box.iot(SOURCE)
    certificate = _device(iot)
    iot.create_policy(
        policyName="by-ip",
        policyDocument=_document(
            {
                "Effect": "Deny",
                "Action": "iot:Connect",
                "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
            }
        ),
    )
    iot.attach_policy(policyName="by-ip", target=certificate)
    with pytest.raises(ClientError) as error:
        _ask(iot, certificate, "sensor-1", ("CONNECT", f"{ARN}:client/sensor-1"))
    assert _code(error) == "SandboxCannotEvaluate"
    assert "policy by-ip, statement 0" in str(error.value)
    # A question that statement cannot touch is answered.
    assert _decisions(_ask(iot, certificate, "sensor-1", ("PUBLISH", f"{ARN}:topic/dub/t"))) == [
        "ALLOWED"
    ]
