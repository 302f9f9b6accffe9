"""THE ONE PLACE where the sandbox supplies AWS behaviour that moto 5.2.5 lacks.

Everything else in the sandbox is moto running for real. Each patch or helper in this package
names the AWS behaviour it emulates and where that behaviour is documented (AWS's public
documentation; docs/design.md lists the sources and what moto lacks). Patches are applied to moto's *backends and response classes* in this
process, which is also the process that hosts the ThreadedMotoServer, so every client of the
endpoint (a test, the pipeline's own handlers, the AWS CLI from another shell) sees them.
``install()`` applies them and ``uninstall()`` puts moto back exactly as it was, so other tests
that use ``mock_aws`` in the same process see plain moto.

Contents, in the order of the data flow (one module per concern):
1. Lambda runs our handlers (``LambdaSimpleBackend.invoke``), their stdout kept in
   ``FUNCTION_LOG`` as CloudWatch Logs would keep it (``lambda_runtime``).
2. Registry events: the IoT backend's mutating calls publish AWS-shaped registry events into a
   per-region ``Outbox``, as the IoT rule ``SELECT *, topic() AS topic`` would see them
   (``registry``).
3. moto gaps that change the pipeline's behaviour (listed in ``MOTO_GAPS``, ``patches``;
   fixed in ``registry_fixes`` and ``registry_responses``; applied by ``install``).
4. Delivery quirks (duplicates, reordering, drops) under a seed, and the IoT rule's
   Step Functions action (``delivery``).
5. Global Table replication between the two regions' state tables (``globaltable``).
6. The DynamoDB-stream event source mapping that feeds the replicator in Lambda's event shape
   (``mapping``; its counts and the sandbox's other stages' in ``DrainReport``), both reading
   the tables' streams through ``streams``.
7. The onboarding kinds' calls, with their CloudTrail events (``onboarding``): CA certificates
   (``cacertificates``), device certificates registered with or without a CA
   (``devicecertificates``), provisioning templates (``provisioning``), role aliases
   (``rolealiases``), custom authorizers (``authorizers``); docs/onboarding-kinds.md.
8. Device shadows (``shadows``): the update/documents and delete/accepted messages on the
   shadow topics, the 8 KB refusal, deleted shadows gone; docs/shadows.md.
9. Retained messages (``retained``): Publish with retain keeps or (empty) deletes a topic's
   retained message, ListRetainedMessages and GetRetainedMessage serve them, the 128 KB and
   reserved-topic refusals; docs/retained.md.
"""

from sandbox.emulation.delivery import (
    Delivery,
    DeliveryOutcome,
    DeliveryQuirks,
    ExecutionTimeoutError,
    start_executions,
    wait_for_executions,
)
from sandbox.emulation.globaltable import BATCH_WRITE_LIMIT, GlobalTableReplication
from sandbox.emulation.install import (
    EmulationAlreadyInstalledError,
    active,
    install,
    uninstall,
)
from sandbox.emulation.lambda_runtime import (
    FUNCTION_LOG,
    FunctionLog,
    Handler,
    InvocationError,
    LambdaContext,
    call_handler,
    environment_lock,
    function_environment,
    import_handler,
)
from sandbox.emulation.mapping import DrainReport, EventSourceMapping, FailedBatch, StreamHandler
from sandbox.emulation.patches import MOTO_GAPS, JsonDict
from sandbox.emulation.registry import Outbox, RegistryEmulation
from sandbox.emulation.streams import (
    LambdaStreamReader,
    StreamCursor,
    is_noop_modify,
    lambda_stream_record,
)

__all__ = [
    "BATCH_WRITE_LIMIT",
    "FUNCTION_LOG",
    "MOTO_GAPS",
    "Delivery",
    "DeliveryOutcome",
    "DeliveryQuirks",
    "DrainReport",
    "EmulationAlreadyInstalledError",
    "EventSourceMapping",
    "ExecutionTimeoutError",
    "FailedBatch",
    "FunctionLog",
    "GlobalTableReplication",
    "Handler",
    "InvocationError",
    "JsonDict",
    "LambdaContext",
    "LambdaStreamReader",
    "Outbox",
    "RegistryEmulation",
    "StreamCursor",
    "StreamHandler",
    "active",
    "call_handler",
    "environment_lock",
    "function_environment",
    "import_handler",
    "install",
    "is_noop_modify",
    "lambda_stream_record",
    "start_executions",
    "uninstall",
    "wait_for_executions",
]
