"""`iot-crr readiness`: would each device connect and work in the DR region right now?

An audit of what a device needs beyond the registry. The flow, each stage a module:

- ``gather``: the thin layer of AWS reads (through the one IoT adapter, paced to each API's
  quota): per device, TestAuthorization's answers in both regions and its certificate,
  attachments and policies there; per region, the account's configuration devices rely on.
- ``devices`` (pure): a device's facts in, its verdict out: ready when every action allowed in
  the source is allowed in the destination, else reasons that say what to fix
  (``policydiff`` compares its policies statement by statement).
- ``checks`` (pure): the account-level checks, pass or fail with the fix (registry events and
  fleet indexing are ``reconcile.doctor``'s, the same implementation).
- ``report``: the verdicts and checks as table, JSON, Markdown and HTML.
"""
