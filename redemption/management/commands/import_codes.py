"""Import a CSV of codes (scanCode[,codeState][,customCodeInfo]) into a personal code type."""

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.management.cli import command_error, job_finish
from redemption.services import bulk

SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = (
        "Import codes from a CSV file ('-' reads stdin) as a background job: one code per line, "
        "scanCode[,codeState][,customCodeInfo]. Prints the job id; --wait runs it here and "
        "reports what was imported and which lines were refused."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code_type", help="Name of a personal (SINGLE) code type.")
        parser.add_argument("file", help="Path of the CSV file, or - for stdin.")
        parser.add_argument(
            "--wait", action="store_true", help="Run the job here and wait for it to finish."
        )
        parser.add_argument(
            "--preserve-state",
            action="store_true",
            help="A migration import: lines keep every state and their history (a header row "
            "names the columns, as the export writes them); a shared type takes one row per "
            "profile redemption.",
        )

    def handle(
        self,
        *args: Any,
        code_type: str,
        file: str,
        wait: bool,
        preserve_state: bool = False,
        **options: Any,
    ) -> None:
        try:
            if file == "-":
                job = self._start(code_type, sys.stdin.buffer, preserve_state)
            else:
                with open(file, "rb") as fh:
                    job = self._start(code_type, fh, preserve_state)
        except OSError as err:
            raise CommandError(f"Cannot read {file}: {err.strerror}") from None
        self.stdout.write(str(job.pk))
        finished = job_finish(self, job, wait=wait)
        if finished is None:
            return
        s = finished.summary
        self.stdout.write(
            f"Imported {s.get('imported', 0):,} codes into “{finished.code_type_name}”; "
            f"{s.get('duplicatesInFile', 0):,} duplicates in the file, "
            f"{s.get('duplicatesInDatabase', 0):,} already in the database, "
            f"{s.get('invalid', 0):,} invalid lines."
        )
        for error in finished.errors[:SHOWN_ERRORS]:
            where = f"line {error['line']}" if error["line"] else "file"
            scan = f" {error['scanCode']}" if error["scanCode"] else ""
            self.stderr.write(f"  {where}:{scan} {error['code']}: {error['message']}")
        if finished.error_count > SHOWN_ERRORS:
            self.stderr.write(f"  … and {finished.error_count - SHOWN_ERRORS:,} more.")

    def _start(self, code_type: str, upload: Any, preserve_state: bool) -> Any:
        try:
            return bulk.job_import_start(
                actor=Actor.system("cli:import_codes"),
                code_type_name=code_type,
                upload=upload,
                preserve_state=preserve_state,
            )
        except exc.RedemptionError as err:
            raise command_error(err) from None
