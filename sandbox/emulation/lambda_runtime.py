"""1. Lambda runs our handlers (``LambdaSimpleBackend.invoke``)."""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from moto.awslambda_simple.models import LambdaSimpleBackend

from sandbox.emulation.patches import JsonDict

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


@dataclass(frozen=True)
class InvocationError:
    function_name: str
    error_type: str
    message: str


class FunctionLog:
    """What the functions wrote to stdout, line by line, as CloudWatch Logs keeps a Lambda
    function's output (where EMF lines become metrics: "Embedded metric format", Amazon CloudWatch
    User Guide, https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format.html),
    and their unhandled errors (``errors``; Lambda logs those too). In the sandbox the functions
    share the operator's process, so without this their EMF lines (Powertools Metrics prints
    them) landed in `make demo`'s output. The newest ``MAX_LINES`` are kept; ``echo`` also writes
    each line to a stream (`sandbox up --verbose`)."""

    MAX_LINES = 10_000

    def __init__(self) -> None:
        self._lines: deque[tuple[str, str]] = deque(maxlen=self.MAX_LINES)
        self._lock = threading.Lock()
        self.echo: TextIO | None = None
        self.errors: list[InvocationError] = []

    def append(self, function_name: str, line: str) -> None:
        with self._lock:
            self._lines.append((function_name, line))
        if self.echo is not None:
            self.echo.write(line + "\n")

    def lines(self, function_name: str | None = None) -> list[str]:
        with self._lock:
            return [line for name, line in self._lines if function_name in (None, name)]

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()
            self.errors.clear()


FUNCTION_LOG = FunctionLog()


class _FunctionStdout(io.TextIOBase):
    """``sys.stdout`` while a function runs: that thread's writes go to ``FUNCTION_LOG``, every
    other thread's (the operator's console lines) to the stream it replaced."""

    def __init__(self, function_name: str, replaced: TextIO) -> None:
        super().__init__()
        self._function_name = function_name
        self._replaced = replaced
        self._owner: int | None = threading.get_ident()
        self._partial = ""

    def write(self, text: str) -> int:
        if threading.get_ident() != self._owner:
            return self._replaced.write(text)
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            FUNCTION_LOG.append(self._function_name, line)
        return len(text)

    def finish(self) -> None:
        """The function returned: keep a last unterminated line; pass any later write on."""
        if self._partial:
            FUNCTION_LOG.append(self._function_name, self._partial)
            self._partial = ""
        self._owner = None

    def flush(self) -> None:
        self._replaced.flush()

    def isatty(self) -> bool:
        return self._replaced.isatty()

    def writable(self) -> bool:
        return True


@contextmanager
def _function_stdout(function_name: str) -> Iterator[None]:
    """The function's stdout goes to ``FUNCTION_LOG`` while the ``with`` lasts. Functions run
    one at a time (``environment_lock``), so the swap never nests; someone else's swap made
    meanwhile (a test runner's) is left in place."""
    replaced = sys.stdout
    capture = _FunctionStdout(function_name, replaced)
    sys.stdout = capture
    try:
        yield
    finally:
        capture.finish()
        if sys.stdout is capture:
            sys.stdout = replaced


def call_handler(
    handler_path: str, event: Any, env: Mapping[str, str], function_name: str = ""
) -> Any:
    """Run a handler as Lambda would: its environment applied, a context object passed, its
    stdout kept in ``FUNCTION_LOG`` (Lambda sends it to CloudWatch Logs)."""
    handler = import_handler(handler_path)
    name = function_name or handler_path
    with function_environment(env), _function_stdout(name):
        return handler(event, LambdaContext(name))


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
        FUNCTION_LOG.errors.append(
            InvocationError(function.function_name, type(error).__name__, str(error))
        )
        response_headers["x-amz-function-error"] = "Unhandled"
        return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error)}).encode()
    return json.dumps(result, default=str).encode()
