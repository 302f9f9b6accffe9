"""3. Step Functions behaviours moto 5.2.5's executor lacks (listed in ``MOTO_GAPS``).

moto runs every state machine with Standard semantics and matches ``States.ALL`` against every
error. The persist state machine is an asynchronous Express workflow (infra/source.yaml), and AWS
is stricter than moto on both counts, so without these patches the sandbox would be more lenient
than AWS:

- **Express workflows do not deduplicate by name.** "Idempotency is not automatically managed.
  Starting multiple workflows with the same name results in concurrent executions" (AWS Step
  Functions Developer Guide, "Execution guarantees",
  https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html).
  moto answers a repeated name as Standard does (the running execution again, or
  ExecutionAlreadyExists). Here a start on an EXPRESS machine is always a new execution, with an
  ARN of its own so each can be told apart ([assumption] the ARN's shape: the Standard form plus
  a unique suffix; only its uniqueness is relied on).
- **States.ALL does not match States.Runtime or States.DataLimitExceeded.** "The States.ALL error
  type ... can't catch the States.DataLimitExceeded terminal error or Runtime error types"; a
  States.Runtime error "isn't retriable, and will always cause the execution to fail" (AWS Step
  Functions Developer Guide, "Handling errors in Step Functions workflows",
  https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html). moto's
  ``ErrorEqualsDecl`` matches States.ALL against any error, so a runtime error in the persist
  task went to the failure queue in the sandbox; on AWS the execution fails without a failure
  record (only the ExecutionsFailed alarm sees it). Here a Retrier or Catcher on States.ALL no
  longer matches those two.
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import (
    ErrorEqualsDecl,
)
from moto.stepfunctions.parser.backend.execution import Execution

from sandbox.emulation.patches import _PATCHES

EXPRESS = "EXPRESS"
STATES_ALL = "States.ALL"
NOT_MATCHED_BY_STATES_ALL = frozenset({"States.Runtime", "States.DataLimitExceeded"})


def _handle_name_input_idempotency(self: StateMachine, name: str, execution_input: str) -> Any:
    """Express: never the execution of the same name (nor ExecutionAlreadyExists)."""
    if self.type == EXPRESS:
        return None
    original = _PATCHES.original(StateMachine, "_handle_name_input_idempotency")
    return original(self, name, execution_input)


def _execution_init(self: Execution, *args: Any, **kwargs: Any) -> None:
    """An Express execution's ARN is its own even when its name is not (set before it starts)."""
    _PATCHES.original(Execution, "__init__")(self, *args, **kwargs)
    if getattr(self.state_machine, "type", None) == EXPRESS:
        self.exec_arn = self.execution_arn = f"{self.exec_arn}:{uuid.uuid4()}"


def _error_equals_eval_body(self: ErrorEqualsDecl, env: Any) -> None:
    """States.ALL matches any error but States.Runtime and States.DataLimitExceeded."""
    error = env.stack[-1]
    names = {getattr(n, "error_name", None) for n in self.error_names}
    if STATES_ALL in names and getattr(error, "error_name", None) in NOT_MATCHED_BY_STATES_ALL:
        env.stack.pop()
        env.stack.append(False)
        return
    _PATCHES.original(ErrorEqualsDecl, "_eval_body")(self, env)


def install_step_functions_fixes() -> None:
    _PATCHES.set(StateMachine, "_handle_name_input_idempotency", _handle_name_input_idempotency)
    _PATCHES.set(Execution, "__init__", _execution_init)
    _PATCHES.set(ErrorEqualsDecl, "_eval_body", _error_equals_eval_body)
