"""Export a code type's codes as CSV to stdout or a file."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from redemption import exceptions as exc
from redemption import selectors
from redemption.csv_out import csv_write
from redemption.management.cli import command_error
from redemption.models import STATE_ORDER
from redemption.services import bulk


class Command(BaseCommand):
    help = (
        "Write a code type's codes as CSV (scanCode,codeState,codeType,batchId,customCodeInfo,"
        "redeemedByProfileId,redeemedAt,createdAt), streamed, to stdout or --output."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code_type")
        parser.add_argument("--state", choices=STATE_ORDER, default=None)
        parser.add_argument("--batch", default=None, help="Only the codes of this batch id.")
        parser.add_argument("-o", "--output", default=None, help="File to write (default stdout).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            ct = selectors.code_type_get(options["code_type"])
            rows = bulk.export_rows(code_type=ct, state=options["state"], batch_id=options["batch"])
        except exc.RedemptionError as err:
            raise command_error(err) from None
        if options["output"]:
            with open(options["output"], "w", newline="", encoding="utf-8") as fh:
                count = max(csv_write(fh, rows) - 1, 0)  # the header is no code
            self.stderr.write(f"Wrote {count:,} codes to {options['output']}.", style_func=str)
        else:
            csv_write(self.stdout, rows)
