"""The command line's options: their types, help and defaults, and the
groups of them that the acting commands take (name: (annotated type, default))."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DbOption = Annotated[Path | None, typer.Option("--db", help="The database file (env MAINTCTL_DB).", show_default=False)]
RedisUrlOption = Annotated[
    str | None,
    typer.Option(
        "--redis-url",
        help="Where notifications go (env MAINTCTL_REDIS_URL, then REDIS_URL); unset, they stay queued.",
        show_default=False,
    ),
]
MediaDirOption = Annotated[
    Path | None,
    typer.Option(
        "--media-dir",
        help="The media directory (env MAINTCTL_MEDIA_DIR; default media/ beside the database).",
        show_default=False,
    ),
]
NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Act as if this instant were now (env MAINTCTL_NOW).", show_default=False),
]
DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Show what the pass would do and change nothing.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing when all went well.")]
WaitOption = Annotated[
    float | None,
    typer.Option(
        "--wait",
        metavar="SECONDS",
        help="Wait this long for another run's lock (default: exit 75 at once).",
        show_default=False,
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Say more, on stderr, as the run goes.")]
MaxItemsOption = Annotated[
    int | None,
    typer.Option("--max-items", metavar="N", help="Stop each action after N items; the rest wait.", show_default=False),
]
MaxSecondsOption = Annotated[
    float | None,
    typer.Option(
        "--max-seconds",
        metavar="S",
        help="Begin no batch after S seconds (each action still does one); the rest wait.",
        show_default=False,
    ),
]
ForOption = Annotated[
    str | None,
    typer.Option(
        "--for",
        metavar="DURATION",
        help="Repeat the passes for this long (such as 55s), holding the lock.",
        show_default=False,
    ),
]
EveryOption = Annotated[
    str | None,
    typer.Option(
        "--every", metavar="DURATION", help="With --for: begin a pass this often (such as 5s).", show_default=False
    ),
]
# How often or when: `schedule` (an action's) and `job add` (a job's) take the same.
ScheduleEveryOption = Annotated[
    str | None, typer.Option("--every", metavar="DURATION", help="Run it this often (such as 1h).")
]
CronOption = Annotated[
    str | None,
    typer.Option("--cron", metavar="EXPR", help="Run it at these times: five fields (such as '0 3 * * *')."),
]
TzOption = Annotated[str, typer.Option("--tz", metavar="ZONE", help="The time zone of --cron (such as Europe/Berlin).")]
ToOption = Annotated[
    list[str] | None,
    typer.Option(
        "--to",
        metavar="DEST",
        help="Where backups go, repeated: a directory, file:///PATH or s3://BUCKET/PREFIX?endpoint=…&region=…"
        " (env MAINTCTL_BACKUP_TO, or MAINTCTL_BACKUP_DIR; default backups/ beside the database).",
        show_default=False,
    ),
]
KeepOption = Annotated[
    int | None,
    typer.Option(
        "--keep",
        metavar="N",
        help="Keep the newest N backups at each destination (env MAINTCTL_BACKUP_KEEP; default 7 where no"
        " --keep-daily, --keep-weekly or --keep-monthly is given).",
        show_default=False,
    ),
]


def _calendar_option(period: str, unit: str) -> object:
    return Annotated[
        int | None,
        typer.Option(
            f"--keep-{period}",
            metavar="N",
            help=f"Keep the newest backup of each of the last N {unit} that have one (env"
            f" MAINTCTL_BACKUP_KEEP_{period.upper()}).",
            show_default=False,
        ),
    ]


KeepDailyOption = _calendar_option("daily", "days")
KeepWeeklyOption = _calendar_option("weekly", "ISO weeks")
KeepMonthlyOption = _calendar_option("monthly", "months")
WithMediaOption = Annotated[bool, typer.Option("--with-media", help="Also copy the media directory.")]

DbsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--db",
        help="The database file (env MAINTCTL_DB); repeat it, or give a glob pattern such as '/srv/tenants/*.db',"
        " for a run on each.",
        show_default=False,
    ),
]
ShardOption = Annotated[
    str | None,
    typer.Option(
        "--shard",
        metavar="I/N",
        help="Only the databases whose stable hash modulo N is I (env MAINTCTL_SHARD; N alone takes I from"
        " JOB_COMPLETION_INDEX).",
        show_default=False,
    ),
]
ParallelOption = Annotated[
    int | None,
    typer.Option(
        "--parallel", metavar="N", help="Databases run at once (default: the CPU count).", min=1, show_default=False
    ),
]

COMMON = {
    "dbs": (DbsOption, None),
    "shard": (ShardOption, None),
    "parallel": (ParallelOption, None),
    "redis_url": (RedisUrlOption, None),
    "media_dir": (MediaDirOption, None),
    "now": (NowOption, None),
    "dry_run": (DryRunOption, False),
    "json": (JsonOption, False),
    "quiet": (QuietOption, False),
    "wait": (WaitOption, None),
    "verbose": (VerboseOption, False),
}
LIMITS = {"max_items": (MaxItemsOption, None), "max_seconds": (MaxSecondsOption, None)}
REPEAT = {"run_for": (ForOption, None), "every": (EveryOption, None)}
DESTINATIONS = {"backup_to": (ToOption, None)}  # where backups are read (verify-backups)
BACKUP = {
    "backup_to": (ToOption, None),
    "keep": (KeepOption, None),
    "keep_daily": (KeepDailyOption, None),
    "keep_weekly": (KeepWeeklyOption, None),
    "keep_monthly": (KeepMonthlyOption, None),
    "with_media": (WithMediaOption, False),
}
