"""What the command line and the environment say of backups: where they go
(--to, repeated; MAINTCTL_BACKUP_TO, separated by spaces; MAINTCTL_BACKUP_DIR,
a directory; default backups/ beside the database), how many are kept, and
the keys copies are encrypted to and read with. Destinations and keys are
kept as written: backups/ reads them where a backup runs, so that a wrong one
fails that action (exit 2) while reminders still fire."""

from __future__ import annotations

from pathlib import Path

from maintctl.config.flags import Flags
from maintctl.config.values import ConfigError, Sources, at_least_one, optional_path, positive_int, yes

KEEP = 7  # copies kept where no --keep, --keep-daily, --keep-weekly or --keep-monthly says otherwise


def fields(flags: Flags, sources: Sources, db: Path) -> dict:
    """Given the flags and where values come from, return the Settings' backup fields."""
    calendar = {
        period: at_least_one(given, f"--keep-{period}")
        or (
            positive_int(sources, f"MAINTCTL_BACKUP_KEEP_{period.upper()}", 1)
            if sources.get(f"MAINTCTL_BACKUP_KEEP_{period.upper()}")[0] is not None
            else 0
        )
        for period, given in (
            ("daily", flags.keep_daily),
            ("weekly", flags.keep_weekly),
            ("monthly", flags.keep_monthly),
        )
    }
    keep_text = sources.get("MAINTCTL_BACKUP_KEEP")[0]
    keep = at_least_one(flags.keep, "--keep") or (
        positive_int(sources, "MAINTCTL_BACKUP_KEEP", KEEP) if keep_text else None
    )
    return {
        "backup_to": _destinations(flags, sources, db),
        "backup_keep": keep if keep is not None or any(calendar.values()) else KEEP,
        "backup_keep_daily": calendar["daily"],
        "backup_keep_weekly": calendar["weekly"],
        "backup_keep_monthly": calendar["monthly"],
        "backup_prune": yes(sources, "MAINTCTL_BACKUP_PRUNE", default=True),
        "backup_media": flags.with_media or yes(sources, "MAINTCTL_BACKUP_MEDIA"),
        "backup_recipients": sources.get("MAINTCTL_BACKUP_RECIPIENTS")[0],
        "backup_identity": optional_path(sources.get("MAINTCTL_BACKUP_IDENTITY")[0]),
        "backup_plaintext": yes(sources, "MAINTCTL_BACKUP_PLAINTEXT"),
    }


def _destinations(flags: Flags, sources: Sources, db: Path) -> tuple[str, ...]:
    """Return the destinations as written: --to's, else MAINTCTL_BACKUP_TO's, else MAINTCTL_BACKUP_DIR, else
    backups/ beside the database."""
    if flags.backup_to:
        if any(not text for text in flags.backup_to):
            raise ConfigError("--to: an empty destination")
        return tuple(flags.backup_to)
    listed, _ = sources.get("MAINTCTL_BACKUP_TO")
    if listed is not None and listed.split():
        return tuple(listed.split())
    directory = optional_path(sources.get("MAINTCTL_BACKUP_DIR")[0])
    return (str(directory or db.parent / "backups"),)
