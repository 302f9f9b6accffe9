"""The conformance suite's machinery: one set of end-to-end scenarios for the sandbox and for a
real account (``make conformance``; ``docs/conformance.md``).

Modules: ``run`` (the run's prefix and tag, the foreign-registry guard), ``target`` (where the
scenarios run: the embedded sandbox or an account's two regions, with call counts), ``registry``
(what a region holds under a prefix, and cleanup), ``refusals`` (the calls AWS refuses that the
emulation claims to refuse too), ``tap`` (a temporary IoT rule into an SQS queue that records the
registry events AWS publishes), ``answers`` (the recorded-answers file and its comparison with the
emulation), ``plugin`` (pytest options and fixtures).
"""
