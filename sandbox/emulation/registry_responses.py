"""Response handlers for the IoT calls moto does not route (part of 3., ``MOTO_GAPS``)."""

from __future__ import annotations

import json
from typing import Any

from moto.iot.responses import IoTResponse

from sandbox.emulation.registry import _Installed

# ---- response handlers for the calls moto does not route ---------------------------------------


def _response_describe_event_configurations(self: IoTResponse) -> Any:
    # AWS IoT API Reference, DescribeEventConfigurations: {eventConfigurations: {type: {Enabled}}}.
    emulation = _Installed.emulation
    config = emulation.event_configuration(self.region) if emulation else {}
    return json.dumps({"eventConfigurations": {t: {"Enabled": on} for t, on in config.items()}})


def _response_update_event_configurations(self: IoTResponse) -> Any:
    # AWS IoT API Reference, UpdateEventConfigurations: PATCH /event-configurations, 200, no body.
    emulation = _Installed.emulation
    requested = self._get_param("eventConfigurations") or {}
    if emulation is not None:
        emulation.configure_events(
            self.region, {t: bool(c.get("Enabled")) for t, c in requested.items()}
        )
    return json.dumps({})


def _path_name(response: IoTResponse, marker: str) -> str:
    from urllib.parse import unquote

    return unquote(response.path.split(marker)[-1].split("?")[0])


def _backend(response: IoTResponse) -> Any:
    # The methods added by this module are unknown to moto's type hints.
    return response.iot_backend


def _response_create_dynamic_thing_group(self: IoTResponse) -> Any:
    from moto.core.responses import ActionResult

    group = _backend(self).create_dynamic_thing_group(
        thing_group_name=_path_name(self, "/dynamic-thing-groups/"),
        thing_group_properties=self._get_param("thingGroupProperties"),
        query_string=self._get_param("queryString"),
        index_name=self._get_param("indexName"),
        query_version=self._get_param("queryVersion"),
    )
    return ActionResult(
        {
            "thingGroupName": group.thing_group_name,
            "thingGroupArn": group.arn,
            "thingGroupId": group.thing_group_id,
            "indexName": group.crr_index_name,
            "queryString": group.crr_query_string,
            "queryVersion": group.crr_query_version,
        }
    )


def _response_update_dynamic_thing_group(self: IoTResponse) -> Any:
    from moto.core.responses import ActionResult

    version = _backend(self).update_dynamic_thing_group(
        thing_group_name=_path_name(self, "/dynamic-thing-groups/"),
        thing_group_properties=self._get_param("thingGroupProperties"),
        expected_version=self._get_param("expectedVersion"),
        query_string=self._get_param("queryString"),
        index_name=self._get_param("indexName"),
        query_version=self._get_param("queryVersion"),
    )
    return ActionResult({"version": version})


def _response_delete_dynamic_thing_group(self: IoTResponse) -> Any:
    from moto.core.responses import EmptyResult

    _backend(self).delete_dynamic_thing_group(
        thing_group_name=_path_name(self, "/dynamic-thing-groups/")
    )
    return EmptyResult()


def _response_update_thing_type(self: IoTResponse) -> Any:
    from moto.core.responses import EmptyResult

    _backend(self).update_thing_type(
        thing_type_name=_path_name(self, "/thing-types/"),
        thing_type_properties=self._get_param("thingTypeProperties"),
    )
    return EmptyResult()
