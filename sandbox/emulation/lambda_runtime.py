"""1. Lambda runs our handlers (``LambdaSimpleBackend.invoke``)."""

from __future__ import annotations

import importlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda_simple.models import LambdaSimpleBackend

from sandbox.emulation.patches import JsonDict, _Installed

Handler = Callable[[JsonDict, Any], Any]

# --------------------------------------------------------------------------------------------
# 1. Lambda runs our handlers
# --------------------------------------------------------------------------------------------

# In AWS each function runs in an execution environment of its own, never shared across
# functions, with its own environment variables ("Lambda isolation technologies", Security
# Overview of AWS Lambda, https://docs.aws.amazon.com/whitepapers/latest/security-overview-aws-lambda/lambda-isolation-technologies.html;
# https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html). Here one process
# hosts every "function" and handlers read their settings from os.environ per call, so
# invocations are serialised while a function's environment is applied. Removing a key while
# another thread walks os.environ raises KeyError there; botocore walks it on every client it
# creates (proxy settings: ``urllib.request.getproxies_environment``), and moto's Step Functions
# executor creates a client per task on its own threads: under load a persist execution failed
# with States.Runtime "'STATE_TABLE'" and went to the failure queue. Two guards: added keys stay
# until the sandbox stops (``_ADDED``), and client creation takes the same lock as applying an
# environment (``environment_lock``; ``install`` wraps moto's executor's client factory).
_ENV_LOCK = threading.RLock()
# Variables a function added that the process did not have. They stay until
# ``forget_function_environment`` (the sandbox's stop): deleting them after each call raced with
# threads reading os.environ outside the lock (moto's Step Functions workers, botocore), which
# then failed with KeyError('STATE_TABLE') — found by a 2,000-call burst through `sandbox up`.
_ADDED: set[str] = set()


def environment_lock() -> threading.RLock:
    """Held while a function's environment is applied; hold it to read os.environ whole
    (creating a boto3 client does)."""
    return _ENV_LOCK


def with_environment_lock(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` called under ``environment_lock`` (for moto's client factories)."""

    def locked(*args: Any, **kwargs: Any) -> Any:
        with _ENV_LOCK:
            return function(*args, **kwargs)

    return locked


@contextmanager
def function_environment(env: Mapping[str, str]) -> Iterator[None]:
    """Apply a function's environment variables for one call, then restore the values the
    process had (variables it did not have are left, see ``_ADDED``)."""
    with _ENV_LOCK:
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    _ADDED.add(name)
                else:
                    os.environ[name] = value


def forget_function_environment() -> None:
    """Remove the variables functions added (once nothing runs: the sandbox has stopped)."""
    with _ENV_LOCK:
        for name in _ADDED:
            os.environ.pop(name, None)
        _ADDED.clear()


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    invoked_function_arn: str = ""
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 128
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def import_handler(path: str) -> Handler:
    """``"pipeline.persist.lambda_handler"`` → the function, imported the way Lambda does."""
    module_name, _, attribute = path.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def call_handler(
    handler_path: str, event: Any, env: Mapping[str, str], function_name: str = ""
) -> Any:
    """Run a handler as Lambda would: its environment applied, a context object passed."""
    handler = import_handler(handler_path)
    with function_environment(env):
        return handler(event, LambdaContext(function_name or handler_path))


@dataclass(frozen=True)
class InvocationError:
    function_name: str
    error_type: str
    message: str


def _lambda_invoke(  # noqa: PLR0917 - moto's own signature, called positionally
    self: LambdaSimpleBackend,
    function_name: str,
    qualifier: str | None,
    body: Any,
    headers: Any,
    response_headers: Any,
) -> bytes:
    """AWS Lambda runs the function's code (moto's Docker-free backend only echoes the payload).

    Why and how: docs/design.md, "The sandbox". An exception becomes
    Lambda's unhandled-error response (``x-amz-function-error: Unhandled``, ``errorType`` = the
    exception class name), which is what Step Functions' Retry/Catch match on.
    """
    function = self.get_function(function_name, qualifier)
    env = {
        **(function.environment_vars or {}),
        "AWS_REGION": self.region_name,
        "AWS_DEFAULT_REGION": self.region_name,
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
    }
    event = json.loads(body) if body else {}
    try:
        result = call_handler(str(function.handler), event, env, function.function_name)
    except Exception as error:  # Lambda's own contract: an unhandled error is a response
        if _Installed.emulation is not None:
            _Installed.emulation.invocation_errors.append(
                InvocationError(function.function_name, type(error).__name__, str(error))
            )
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
    return json.dumps(result, default=str).encode()
