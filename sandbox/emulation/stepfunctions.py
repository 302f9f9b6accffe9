"""3. Step Functions behaviours moto 5.2.5's executor lacks (listed in ``MOTO_GAPS``).

moto runs every state machine with Standard semantics. The persist state machine is an
asynchronous Express workflow (infra/source.yaml), and AWS is stricter than moto there, so
without these patches the sandbox would be more lenient than AWS:

- **Express workflows do not deduplicate by name.** "Idempotency is not automatically managed.
  Starting multiple workflows with the same name results in concurrent executions" (AWS Step
  Functions Developer Guide, "Execution guarantees",
  https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html).
  moto answers a repeated name as Standard does (the running execution again, or
  ExecutionAlreadyExists). Here a start on an EXPRESS machine is always a new execution, with an
  ARN of its own so each can be told apart ([assumption] the ARN's shape: the Standard form plus
  a unique suffix; only its uniqueness is relied on).
"""

from __future__ import annotations

import uuid
from typing import Any

from moto.stepfunctions.models import StateMachine
from moto.stepfunctions.parser.backend.execution import Execution

from sandbox.emulation.patches import _PATCHES

EXPRESS = "EXPRESS"


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


def install_step_functions_fixes() -> None:
    _PATCHES.set(StateMachine, "_handle_name_input_idempotency", _handle_name_input_idempotency)
    _PATCHES.set(Execution, "__init__", _execution_init)
