"""The embedded two-region sandbox: moto's server plus the AWS behaviours moto lacks."""

DEFAULT_SOURCE_REGION = "us-east-1"
DEFAULT_DESTINATION_REGION = "eu-west-1"
