"""The function django-crontab runs for each job.

django-crontab's ``crontab run`` wraps the job in a bare ``except:``, logs the error and exits 0,
so a failed build would look like a success to cron, to MAILTO and to any exit-code monitor. Here
a failed job says why on stderr and ends the process with status 1 itself (``os._exit``: a raised
``SystemExit`` would be swallowed by that bare except too).
"""

import logging
import os
import sys
import traceback

from django.core.management import call_command
from django.core.management.base import CommandError


def run_command(name, *args, **options):
    try:
        call_command(name, *args, **options)
    except CommandError as exc:
        _exit_failed(f"{name}: {exc}")
    except Exception:
        traceback.print_exc()
        _exit_failed(f"{name}: failed with an unexpected error (traceback above)")


def _exit_failed(message):
    sys.stderr.write(message + "\n")
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(1)
