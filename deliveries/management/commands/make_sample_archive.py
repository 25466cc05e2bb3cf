"""Write a sample raw archive (for the demo, the tests and the benchmarks): parse, call, print."""

from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.template.defaultfilters import pluralize

from deliveries import sample


def parse_date(value):
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            pass
    raise CommandError(f"not a date (YYYY-MM-DD): {value!r}")


class Command(BaseCommand):
    help = (
        "Write a deterministic sample of the collector's archive: ROOT/YYYYMMDD/HH.jsonl.gz for --days days "
        "ending at --end (default yesterday UTC). --flaws puts the real files' flaws into the last day."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, required=True, help="number of days, at least 1")
        parser.add_argument("--end", help="last day, YYYY-MM-DD, before today UTC (default: yesterday)")
        parser.add_argument("--seed", type=int, default=sample.DEFAULT_SEED)
        parser.add_argument("--entries-per-hour", type=int, default=sample.DEFAULT_ENTRIES_PER_HOUR)
        parser.add_argument("--samples-per-entry", type=int, default=sample.DEFAULT_SAMPLES_PER_ENTRY)
        parser.add_argument(
            "--flaws", action="store_true", help="last day: a missing hour, bad lines, a truncated gzip tail"
        )
        parser.add_argument(
            "--archive-flaws",
            action="store_true",
            help="last day: an empty and a non-gzip hour file, repeated entries (a replayed buffer, an hour file "
            "copied twice), a conflicting duplicate, a mistyped entry",
        )
        parser.add_argument(
            "--partial-day",
            action="append",
            default=[],
            metavar="DATE",
            help=f"a day with {24 - sample.PARTIAL_DAY_MISSING} hour files (repeatable)",
        )
        parser.add_argument("--root", help="archive folder (default: settings.ARCHIVE_ROOT)")
        parser.add_argument("--dry-run", action="store_true", help="say what would be written, write nothing")

    def handle(self, *args, **options):
        days = options["days"]
        if days < 1:
            raise CommandError("--days must be at least 1")
        if options["entries_per_hour"] < 1 or options["samples_per_entry"] < 1:
            raise CommandError("--entries-per-hour and --samples-per-entry must be at least 1")
        today = sample.today_utc()
        end = parse_date(options["end"]) if options["end"] else sample.yesterday_utc()
        if end >= today:
            raise CommandError(f"--end {end} is not before today ({today} UTC): a day is written until it ends")
        dates = sample.archive_days(days, end)
        partial = {parse_date(value) for value in options["partial_day"]}
        outside = sorted(str(day) for day in partial if day not in dates)
        if outside:
            raise CommandError(f"--partial-day outside {dates[0]}..{dates[-1]}: {', '.join(outside)}")
        if options["archive_flaws"] and options["flaws"] and dates[-1] in partial:
            raise CommandError("--archive-flaws needs 21 hour files on the last day: not with --flaws on a partial day")
        root = Path(options["root"] or settings.ARCHIVE_ROOT)
        kwargs = dict(
            seed=options["seed"],
            entries_per_hour=options["entries_per_hour"],
            samples_per_entry=options["samples_per_entry"],
            flaws=options["flaws"],
            archive_flaws=options["archive_flaws"],
            partial_days=partial,
        )
        if options["dry_run"]:
            self.dry_run(root, dates, **kwargs)
            return
        results = sample.write_archive(root, dates, on_day=self.progress, **kwargs)
        rows = sum(stats.rows for stats in results)
        files = sum(len(stats.hours) for stats in results)
        size = sum(stats.gz_bytes for stats in results)
        seconds = sum(stats.seconds for stats in results)
        notes = [f"{sum(stats.is_partial for stats in results)} partial"]
        if options["flaws"] or options["archive_flaws"]:
            notes.append(f"flaws on {dates[-1]}")
        self.stdout.write(
            f"Wrote {len(results)} day{pluralize(len(results))} ({', '.join(notes)}) to {root}: {files} hour files, "
            f"{rows} entries, {size / 1e6:.1f} MB gzipped, in {seconds:.1f} s (seed {options['seed']})."
        )

    def progress(self, stats):
        missing = f", missing {' '.join(f'{h:02d}' for h in stats.missing_hours)}" if stats.missing_hours else ""
        flaws = [f"{hh}:{kind}" for hh, kind in stats.bad_lines]
        if stats.coerced_hour:
            flaws.append(f"{stats.coerced_hour}:coerced")
        flaws += [f"{hh}:{reason}" for hh, reason in stats.bad_hours.items()]
        flaws = f", flaws: {' '.join(sorted(flaws))}" if stats.flaws or stats.archive_flaws else ""
        self.stdout.write(
            f"{stats.day}  {stats.hours_found:2d} hours  {stats.rows:6d} entries  {stats.gz_bytes / 1e6:8.2f} MB"
            f"  {stats.seconds:6.2f} s{missing}{flaws}"
        )

    def dry_run(self, root, dates, *, partial_days, flaws, archive_flaws, **sizes):
        for day in dates:
            missing = set(sample.partial_day_missing_hours(day, sizes["seed"])) if day in partial_days else set()
            if flaws and day == dates[-1]:
                missing.add(sample.FLAW_MISSING_HOUR)
            note = f", missing {' '.join(f'{h:02d}' for h in sorted(missing))}" if missing else ""
            self.stdout.write(f"{day}  {24 - len(missing):2d} hours  -> {root / day.strftime('%Y%m%d')}{note}")
        self.stdout.write(
            f"Dry run: would write {len(dates)} days to {root} ({sizes['entries_per_hour']} entries an hour, "
            f"{sizes['samples_per_entry']} price samples an entry); nothing written."
        )
