"""Showing a trace: one JSON document with --json, a rich timeline on a
terminal, plain lines otherwise (what cron mails)."""

from __future__ import annotations

import sys

from maintctl.json_text import one_line
from maintctl.show.views import as_json, table

VERDICT_STYLES = {
    "acknowledged": "green",
    "no-readers": "yellow",
    "not-due": "green",
    "pending": "yellow",
    "not-read": "yellow",
    "read-not-acknowledged": "bold red",
}


def trace(document: dict, stuck: str | None, as_document: bool, quiet: bool = False) -> None:
    """Print a trace; with quiet, only why it is stuck (nothing where it is not)."""
    if quiet:
        if stuck:
            print(f"maintctl: attention: {one_line(stuck)}", file=sys.stderr)
        return
    if as_document:
        as_json(document)
        return
    item = document["item"]
    rows = [(step["at"], step["stage"], step["detail"]) for step in document["timeline"]]
    table(f"{item['type']} {item['id']}", ("at", "stage", "detail"), rows, VERDICT_STYLES)
    delivery = document["delivery"]
    if delivery and delivery["entry_id"]:
        print(one_line(f"stream {delivery['stream']}, entry {delivery['entry_id']}, msg_id {delivery['msg_id']}"))
    print(f"verdict: {document['verdict']}")
    if stuck:
        print(f"maintctl: attention: {one_line(stuck)}", file=sys.stderr)
