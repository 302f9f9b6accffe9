"""The ``iot-crr`` entry point: every way a command can end becomes one of four exit codes.

``0`` in sync (or done), ``1`` drift found, ``2`` error, ``130`` interrupted; nothing else.
Known errors are already one line (``reconcile.context.CliError``); anything unexpected becomes
one line too, naming the exception, with the traceback only under ``--debug``
(``iot-crr --debug <command>``).
An interrupted emit says how far it got (``reconcile.emit.EmitInterrupted``). SIGTERM interrupts
as Ctrl-C does (``reconcile.interrupt``), and an interrupted command ends at once: no waiting for
listings still in a network call.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn

import click

from reconcile.exits import EXIT_CODES, EXIT_ERROR, EXIT_IN_SYNC, EXIT_INTERRUPTED
from reconcile.interrupt import exit_now, sigterm_interrupts

DEBUG_FLAG = "--debug"


def run(argv: Sequence[str] | None = None) -> NoReturn:
    """Run ``iot-crr`` with ``argv`` (default: the process's) and exit with one of EXIT_CODES."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in args
    if debug:
        args.remove(DEBUG_FLAG)
    with sigterm_interrupts():
        code = outcome(args, debug=debug)
    if code == EXIT_INTERRUPTED:
        exit_now(code)  # threads still reading are abandoned, not joined
    sys.exit(code)


def outcome(args: list[str], *, debug: bool = False, obj: Any = None) -> int:
    """The exit code of ``iot-crr args``; what went wrong is on stderr, one line. ``obj`` is
    the commands' ``Factory`` (tests pass one; None builds the real one)."""
    try:
        # Imported here, so that Ctrl-C while the commands load (pandas, boto3: seconds on a
        # busy machine) is an interrupt like any other, not a traceback.
        from reconcile.cli import main

        code = main.main(args, prog_name="iot-crr", standalone_mode=False, obj=obj)
    except click.Abort as abort:  # click turns Ctrl-C (and EOF at a prompt) into Abort
        return _interrupted(abort.__cause__ or abort)
    except KeyboardInterrupt as interrupt:
        return _interrupted(interrupt)
    except click.ClickException as error:
        error.show()
        return EXIT_ERROR
    except SystemExit as done:  # a command's own sys.exit (the demo's 0/1)
        code = done.code if isinstance(done.code, int) else EXIT_ERROR
    except Exception as error:  # anything unexpected: one line, the traceback on request
        if debug:
            traceback.print_exc()
        message = " ".join(str(error).split()) or "(no message)"
        hint = "" if debug else f" (run with iot-crr {DEBUG_FLAG} for the traceback)"
        click.echo(f"Error: {message} [{type(error).__name__}]{hint}", err=True)
        return EXIT_ERROR
    if code is None:
        return EXIT_IN_SYNC
    return code if isinstance(code, int) and code in EXIT_CODES else EXIT_ERROR


def _interrupted(cause: BaseException) -> int:
    detail = str(cause) if str(cause) and not isinstance(cause, click.Abort) else ""
    click.echo(f"interrupted{': ' + detail if detail else ''}", err=True)
    return EXIT_INTERRUPTED
