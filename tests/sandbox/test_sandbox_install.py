"""The emulation patches moto only while installed, so plain ``mock_aws`` tests see plain moto."""

from __future__ import annotations

import pytest
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.iot.models import FakeThingGroup, IoTBackend
from moto.iot.responses import IoTResponse

from sandbox import emulation
from sandbox.emulation import RegistryEmulation


def test_install_patches_and_uninstall_restores_moto() -> None:
    originals = (IoTBackend.create_thing, LambdaSimpleBackend.invoke, FakeThingGroup.to_dict)
    assert not hasattr(IoTResponse, "create_dynamic_thing_group")
    emulation.install(RegistryEmulation())
    try:
        assert IoTBackend.create_thing is not originals[0]
        assert hasattr(IoTResponse, "create_dynamic_thing_group")
        with pytest.raises(emulation.EmulationAlreadyInstalledError):
            emulation.install(RegistryEmulation())
    finally:
        emulation.uninstall()
    assert (
        IoTBackend.create_thing,
        LambdaSimpleBackend.invoke,
        FakeThingGroup.to_dict,
    ) == originals
    assert not hasattr(IoTResponse, "create_dynamic_thing_group")
    assert emulation.active() is None
