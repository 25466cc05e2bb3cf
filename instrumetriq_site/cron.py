"""The function django-crontab runs for each job.

django-crontab's ``crontab run`` catches exceptions and exits 0, so a failed build would look
like a success to cron and to any MAILTO. A CommandError becomes exit status 1 here instead:
``SystemExit`` is not an ``Exception`` and passes through django-crontab's handler.
"""

import sys

from django.core.management import call_command
from django.core.management.base import CommandError


def run_command(name, *args, **options):
    try:
        call_command(name, *args, **options)
    except CommandError as exc:
        sys.stderr.write(f"{name}: {exc}\n")
        raise SystemExit(1) from None
