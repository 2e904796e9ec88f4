"""Generate codes for a personal code type as a job; --wait runs it here with a progress bar."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from redemption import codes
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.management.cli import command_error, job_finish
from redemption.services import bulk


class Command(BaseCommand):
    help = (
        "Generate QUANTITY codes (1-10,000,000) for a personal code type as a background job. "
        "Prints the job id; --wait runs the job in this process and reports the result."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("code_type", help="Name of a personal (SINGLE) code type.")
        parser.add_argument("quantity", type=int)
        parser.add_argument("--state", choices=["Inactive", "Available"], default=None)
        parser.add_argument("--prefix", help="Prefix joined to each code with a hyphen.")
        parser.add_argument("--algorithm", choices=codes.ALGORITHMS, default=None)
        parser.add_argument(
            "--length", type=int, help="Crockford length, 8-32, check character included."
        )
        parser.add_argument(
            "--check", action="store_true", help="End every code with a check character."
        )
        parser.add_argument("--custom-info", help="customCodeInfo for every code, a JSON object.")
        parser.add_argument(
            "--wait", action="store_true", help="Run the job here and wait for it to finish."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        details: dict[str, Any] = {}
        if options["length"] is not None:
            details["length"] = options["length"]
        if options["check"]:
            details["includeCheck"] = True
        info = None
        if options["custom_info"]:
            try:
                info = json.loads(options["custom_info"])
            except ValueError as err:
                raise CommandError(f"--custom-info is not JSON: {err}") from None
        try:
            job = bulk.job_generate_start(
                actor=Actor.system("cli:generate_codes"),
                code_type_name=options["code_type"],
                quantity=options["quantity"],
                state=options["state"],
                custom_code_info=info,
                prefix=options["prefix"],
                algorithm=options["algorithm"],
                algorithm_details=details or None,
            )
        except exc.RedemptionError as err:
            raise command_error(err) from None
        self.stdout.write(str(job.pk))
        finished = job_finish(self, job, wait=options["wait"])
        if finished is not None:
            self.stdout.write(
                f"Generated {finished.done:,} codes in batch {finished.batch_id} "
                f"of “{finished.code_type_name}”."
            )
