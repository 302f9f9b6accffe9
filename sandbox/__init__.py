"""The embedded two-region sandbox: moto's server plus the AWS behaviours moto lacks."""

DEFAULT_SOURCE_REGION = "us-east-1"
DEFAULT_DESTINATION_REGION = "eu-west-1"
DEFAULT_ROUND_BUDGET = 60.0  # seconds a `sandbox up` round may take before it is reported slow


class SandboxError(Exception):
    """The sandbox is not in a state to do what was asked."""
