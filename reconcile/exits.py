"""The four exit codes of every ``iot-crr`` command (and of the nightly job run locally).

Kept apart from ``reconcile.context`` so the entry point (``reconcile.console``) names them
before it loads the commands: an interrupt while they load still ends with ``EXIT_INTERRUPTED``.
"""

from __future__ import annotations

EXIT_IN_SYNC = 0
EXIT_DRIFT = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_CODES = frozenset({EXIT_IN_SYNC, EXIT_DRIFT, EXIT_ERROR, EXIT_INTERRUPTED})
