"""The embedded local AWS: moto's ThreadedMotoServer on 127.0.0.1, holding every region.

First stage of the sandbox: ``MotoServer`` starts the server on a free port, configures it
(Step Functions executes state machines, Lambda runs without Docker) and points this process's
boto3 at it (``AWS_ENDPOINT_URL``, dummy credentials, ``MOTO_PORT`` for Step Functions' own
calls). Everything is undone on ``stop()``, so tests that use ``mock_aws`` afterwards are not
sent to a dead endpoint. The server runs in this process: that is what lets ``emulation`` patch
moto's backends so every client of the endpoint (tests, the AWS CLI in another shell) sees them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from xml.sax.saxutils import escape

from moto.moto_server.threaded_moto_server import MotoRequestHandler, make_server
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import ThreadedMotoServer

HOST = "127.0.0.1"

# Step Functions runs the real ASL; Lambda tasks go through moto's Docker-free backend, whose
# invoke the emulation replaces with a call of our own handler.
SERVER_CONFIG: dict[str, Any] = {
    "stepfunctions": {"execute_state_machine": True},
    "lambda": {"use_docker": False},
}

# Dummy credentials: moto accepts any; real ones must never reach the local endpoint.
_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")


class SandboxServerError(Exception):
    """The embedded moto server could not be started or configured."""


# Global services sign with us-east-1 whatever region the caller names.
_GLOBAL_SERVICES = frozenset({"iam", "sts", "route53", "cloudfront"})
_CREDENTIAL = re.compile(r"Credential=[^/]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/")

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class Gateway:
    """WSGI middleware in front of moto: what a person sees when the sandbox cannot answer.

    - A call signed for a region the sandbox does not serve is refused with one line naming the
      served regions. moto would answer for any region, from an empty registry: an audit against
      a mistyped region would report the whole fleet missing instead of failing.
    - An action moto does not implement answers one line naming it, instead of moto's HTML 500
      page and a server traceback (and 400, not 500, so SDKs do not retry it).
    Both answers are AWS-shaped errors (JSON, or XML for query-protocol and S3 calls), so boto3
    raises a ``ClientError`` whose message is that line.
    """

    def __init__(self, app: WsgiApp, regions: Iterable[str] = ()) -> None:
        self._app = app
        self.regions = tuple(regions)  # empty: every region is served

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = match["service"] if match else ""
        if (
            match
            and self.regions
            and service not in _GLOBAL_SERVICES
            and match["region"] not in self.regions
        ):
            return _error(
                environ,
                start_response,
                service,
                "SandboxRegionNotServed",
                f"the sandbox serves {' and '.join(self.regions)}, not {match['region']} "
                "(start it with --source-region/--target-region)",
            )
        try:
            return self._app(environ, start_response)
        except NotImplementedError as gap:
            return _error(
                environ, start_response, service, "NotImplemented", f"the sandbox (moto): {gap}"
            )


def _error(
    environ: Environ, start_response: StartResponse, service: str, code: str, message: str
) -> list[bytes]:
    form = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
    if service == "s3" or form:
        text = f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        body = (
            f"<Error>{text}</Error>"
            if service == "s3"
            else f"<ErrorResponse><Error><Type>Sender</Type>{text}</Error></ErrorResponse>"
        ).encode()
        content_type = "text/xml"
    else:
        body = json.dumps({"__type": code, "message": message}).encode()
        content_type = "application/json"
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("x-amzn-ErrorType", code),
        ],
    )
    return [body]


class _GatedServer(ThreadedMotoServer):
    """moto's ThreadedMotoServer with the ``Gateway`` in front of its application."""

    def __init__(self, host: str, port: int, gateway: Callable[[WsgiApp], Gateway]) -> None:
        super().__init__(host, port, verbose=False)
        self._gateway = gateway

    def _server_entry(self) -> None:  # moto's own, with the app wrapped
        app = self._gateway(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()


class MotoServer:
    """One embedded moto server on ``127.0.0.1`` and a free port (or ``port`` if given)."""

    def __init__(self, port: int = 0, regions: Iterable[str] = ()) -> None:
        self._requested_port = port
        self._regions = tuple(regions)
        self._server: ThreadedMotoServer | None = None
        self._saved_env: dict[str, str | None] = {}
        self.port = 0

    @property
    def endpoint_url(self) -> str:
        if not self.port:
            raise SandboxServerError("the moto server is not running")
        return f"http://{HOST}:{self.port}"

    def start(self) -> MotoServer:
        if self._server is not None:
            return self
        # werkzeug logs every request at INFO; the sandbox's own report says what happened.
        werkzeug = logging.getLogger("werkzeug")
        if werkzeug.level == logging.NOTSET:
            werkzeug.setLevel(logging.WARNING)
        regions = self._regions
        server = _GatedServer(HOST, self._requested_port, lambda app: Gateway(app, regions))
        try:
            server.start()
        except OSError as error:
            raise SandboxServerError(f"cannot listen on {HOST}:{self._requested_port}") from error
        self._server = server
        self.port = server.get_host_and_port()[1]
        self._apply_environment()
        self.post("/moto-api/config", SERVER_CONFIG)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        try:
            self._server.stop()
        finally:
            self._server = None
            self._restore_environment()
            self.port = 0

    def reset(self) -> None:
        """Forget every resource in every region (moto's ``/moto-api/reset``), keep the config."""
        self.post("/moto-api/reset", {})
        self.post("/moto-api/config", SERVER_CONFIG)

    def post(self, path: str, body: Mapping[str, Any]) -> bytes:
        request = urllib.request.Request(
            self.endpoint_url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                data: bytes = response.read()
                return data
        except OSError as error:
            raise SandboxServerError(f"POST {path} to the moto server failed") from error

    def environment(self) -> dict[str, str]:
        """The variables another shell needs to use this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint_url, "MOTO_PORT": str(self.port), **_ENVIRONMENT}

    def _apply_environment(self) -> None:
        wanted: dict[str, str | None] = {**self.environment(), **dict.fromkeys(_CLEARED)}
        self._saved_env = {name: os.environ.get(name) for name in wanted}
        for name, value in wanted.items():
            _set_env(name, value)

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            _set_env(name, value)
        self._saved_env = {}

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _set_env(name: str, value: str | None) -> None:
    if value is None:
        os.environ.pop(name, None)
    else:
        os.environ[name] = value
