"""install / uninstall: apply every patch of this package to moto, and put moto back."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import moto.iot.models as iot_models
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.iot.models import FakeThingGroup, IoTBackend
from moto.iot.responses import IoTResponse
from moto.iotdata.models import IoTDataPlaneBackend
from moto.iotdata.responses import IoTDataPlaneResponse
from moto.servicequotas.models import ServiceQuotasBackend
from moto.servicequotas.responses import ServiceQuotasResponse
from moto.stepfunctions.parser.asl.utils import boto_client as sfn_boto_client

from sandbox.emulation import onboarding, retained, servicequotas, thing_principals
from sandbox.emulation.authorization_responses import _response_test_authorization
from sandbox.emulation.controlplane import CONTROL_PLANE_PATCHES
from sandbox.emulation.dynamic_groups import (
    _create_dynamic_thing_group,
    _delete_dynamic_thing_group,
    _group_to_dict,
    _update_dynamic_thing_group,
)
from sandbox.emulation.lambda_runtime import (
    _lambda_invoke,
    forget_function_environment,
    with_environment_lock,
)
from sandbox.emulation.patches import _PATCHES, _Patches
from sandbox.emulation.quotas import _response_search_index, _update_indexing_configuration
from sandbox.emulation.registry import RegistryEmulation, _Installed
from sandbox.emulation.registry_fixes import (
    _add_thing_to_thing_group,
    _create_thing,
    _create_thing_group,
    _create_thing_type,
    _delete_thing,
    _delete_thing_group,
    _delete_thing_type,
    _deprecate_thing_type,
    _remove_thing_from_thing_group,
    _update_thing,
    _update_thing_group,
    _update_thing_type,
)
from sandbox.emulation.registry_responses import (
    _response_create_dynamic_thing_group,
    _response_delete_dynamic_thing_group,
    _response_describe_event_configurations,
    _response_update_dynamic_thing_group,
    _response_update_event_configurations,
    _response_update_thing_type,
)
from sandbox.emulation.shadows import DATA_PLANE_PATCHES
from sandbox.emulation.stepfunctions import install_step_functions_fixes

# --------------------------------------------------------------------------------------------
# install / uninstall
# --------------------------------------------------------------------------------------------

_BACKEND_PATCHES: dict[str, Callable[..., Any]] = {
    "create_thing": _create_thing,
    "update_thing": _update_thing,
    "delete_thing": _delete_thing,
    "create_thing_type": _create_thing_type,
    "deprecate_thing_type": _deprecate_thing_type,
    "update_thing_type": _update_thing_type,
    "delete_thing_type": _delete_thing_type,
    "create_thing_group": _create_thing_group,
    "update_thing_group": _update_thing_group,
    "delete_thing_group": _delete_thing_group,
    "create_dynamic_thing_group": _create_dynamic_thing_group,
    "update_dynamic_thing_group": _update_dynamic_thing_group,
    "delete_dynamic_thing_group": _delete_dynamic_thing_group,
    "add_thing_to_thing_group": _add_thing_to_thing_group,
    "remove_thing_from_thing_group": _remove_thing_from_thing_group,
    "update_indexing_configuration": _update_indexing_configuration,
}
_RESPONSE_PATCHES: dict[str, Callable[..., Any]] = {
    "create_dynamic_thing_group": _response_create_dynamic_thing_group,
    "update_dynamic_thing_group": _response_update_dynamic_thing_group,
    "delete_dynamic_thing_group": _response_delete_dynamic_thing_group,
    "update_thing_type": _response_update_thing_type,
    "describe_event_configurations": _response_describe_event_configurations,
    "update_event_configurations": _response_update_event_configurations,
    "test_authorization": _response_test_authorization,
    "search_index": _response_search_index,
}


class EmulationAlreadyInstalledError(Exception):
    """Another sandbox in this process already owns the moto patches."""


def install(emulation: RegistryEmulation) -> None:
    """Apply every patch of this package to moto; ``emulation`` receives the events."""
    if _Installed.emulation is not None:
        raise EmulationAlreadyInstalledError("the registry emulation is already installed")
    _PATCHES.set(LambdaSimpleBackend, "invoke", _lambda_invoke)
    for name, function in _BACKEND_PATCHES.items():
        _PATCHES.set(IoTBackend, name, function)
    for name, function in _RESPONSE_PATCHES.items():
        _PATCHES.set(IoTResponse, name, function)
    for name, function in CONTROL_PLANE_PATCHES.items():
        _PATCHES.set(IoTBackend, name, function)
    for name, function in onboarding.BACKEND_PATCHES.items():
        _PATCHES.set(IoTBackend, name, function)
    for name, function in onboarding.RESPONSE_PATCHES.items():
        _PATCHES.set(IoTResponse, name, function)
    for name, function in thing_principals.RESPONSE_PATCHES.items():
        _PATCHES.set(IoTResponse, name, function)
    for owner, name, function in onboarding.CLASS_PATCHES:
        _PATCHES.set(owner, name, function)
    _serve_service_quotas(_PATCHES)
    for name, function in DATA_PLANE_PATCHES.items():
        _PATCHES.set(IoTDataPlaneBackend, name, function)
    for name, function in retained.RESPONSE_PATCHES.items():
        _PATCHES.set(IoTDataPlaneResponse, name, function)
    # A certificate's id is the SHA-256 of its DER, as AWS computes it (MOTO_GAPS): moto's own
    # option, on for every client of this process's endpoint.
    _PATCHES.set(iot_models, "iot_use_valid_cert", lambda: True)
    _PATCHES.set(FakeThingGroup, "to_dict", _group_to_dict)
    _lock_step_functions_clients()
    install_step_functions_fixes()
    _Installed.emulation = emulation


def _lock_step_functions_clients() -> None:
    """moto's Step Functions executor makes a boto3 client per task on its worker threads:
    under ``environment_lock`` (``lambda_runtime``), so never while a handler's environment is
    half applied. Modules that imported the factory by name are patched too."""
    original = _PATCHES.original(sfn_boto_client, "boto_client_for")
    locked = with_environment_lock(original)
    for name, module in list(sys.modules.items()):
        if (
            name.startswith("moto.stepfunctions.")
            and getattr(module, "boto_client_for", None) is original
        ):
            _PATCHES.set(module, "boto_client_for", locked)


@contextmanager
def served_in_process() -> Iterator[None]:
    """The replicated kinds' calls plain moto lacks entirely (``onboarding.MISSING_IN_MOTO``:
    custom authorizers), served as the sandbox serves them, for in-process ``mock_aws`` users
    (the tests', the benchmarks'): their snapshots list every kind. No events are published
    (none without ``install``), nothing else of moto changes; undone on exit."""
    patches = _Patches()
    _serve_service_quotas(patches)
    for backend_patches, response_patches in onboarding.MISSING_IN_MOTO:
        for name, function in backend_patches.items():
            patches.set(IoTBackend, name, function)
        for name, function in response_patches.items():
            patches.set(IoTResponse, name, function)
    try:
        yield
    finally:
        patches.restore()


def _serve_service_quotas(patches: _Patches) -> None:
    """ListServiceQuotas for IoT Core, which moto lacks entirely (``servicequotas``)."""
    for name, function in servicequotas.BACKEND_PATCHES.items():
        patches.set(ServiceQuotasBackend, name, function)
    for name, function in servicequotas.RESPONSE_PATCHES.items():
        patches.set(ServiceQuotasResponse, name, function)


def uninstall() -> None:
    """Put moto back exactly as it was, and the process's environment."""
    _PATCHES.restore()
    _Installed.emulation = None
    forget_function_environment()


def active() -> RegistryEmulation | None:
    return _Installed.emulation
