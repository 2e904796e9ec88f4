"""Load demo data: code types of both kinds, codes in every state, and a login per role.

Safe to run again: a demo code type that already exists is left as it is, and the four
demo logins get fresh passwords, printed at the end.
"""

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from redemption import selectors, services, sign_in_limits
from redemption.actors import Actor, Profile
from redemption.management.commands.create_staff_user import ensure_staff_user
from redemption.models import Attempt, Batch, Code, CodeType, SharedRedemption, State, UseType
from redemption.services import bulk, staff
from redemption.services._common import audit

# Nothing listens on the discard port: a redeem of these types shows a failed fulfilment.
DEMO_WEBHOOK = "http://127.0.0.1:9/fulfil"
DEMO_TIMEOUT_SECONDS = 86400
ASYNC_FULFILLMENT: dict[str, Any] = {
    "url": DEMO_WEBHOOK,
    "async": True,
    "maxRetries": 2,
    "timeoutSeconds": DEMO_TIMEOUT_SECONDS,
}
LOGINS = (
    ("admin", "admin", "superuser: everything, incl. server keys"),
    ("ops", "Ops", "code types, generate, import, export, bulk"),
    ("support", "Support", "single-code and user-monitoring actions"),
    ("viewer", "Viewer", "read only"),
)
FIRST_NAMES = ("Ann", "Ben", "Chloé", "Dev", "Eun-ji", "Femi", "Greta", "Hiro", "Ines", "Jonas")


def _profile(prefix: str, i: int) -> Profile:
    return Profile(f"{prefix}-{i:05d}", FIRST_NAMES[i % len(FIRST_NAMES)])


def _spread(now: datetime, i: int) -> datetime:
    """A time in the last 30 days, so the dashboard chart has a shape."""
    return now - timedelta(days=i % 30, minutes=(i * 37) % 1440)


def _generate(actor: Actor, name: str, quantity: int, **options: Any) -> list[Code]:
    job = bulk.job_generate_start(actor=actor, code_type_name=name, quantity=quantity, **options)
    job = bulk.job_run_here(job.pk)
    return list(Code.objects.filter(batch=job.batch).order_by("pk"))


def _mark(codes: list[Code], now: datetime, state: str, **fields: Any) -> None:
    """Move generated codes on in bulk (demo volume only; the services do it one by one)."""
    for i, code in enumerate(codes):
        at = _spread(now, i)
        code.state = state
        code.version = 2
        code.updated_at = at
        if state in {State.REDEEMED, State.IN_PROGRESS, State.FAILED}:
            profile = _profile("player", i)
            code.redeemed_by_profile_id = profile.id
            code.redeemed_by_profile_name = profile.name
        if state == State.REDEEMED:
            code.redeemed_at = at
        if state in {State.IN_PROGRESS, State.FAILED}:
            code.current_attempt = 1
            code.updated_at = now - timedelta(minutes=i % 120)
        for name, value in fields.items():
            setattr(code, name, value)
        # One small UPDATE per row: far quicker than bulk_update's CASE chains on SQLite.
        Code.objects.filter(pk=code.pk).update(
            **{name: getattr(code, name) for name in (*_MARKED_FIELDS, *fields)}
        )


_MARKED_FIELDS = (
    "state",
    "version",
    "updated_at",
    "redeemed_by_profile_id",
    "redeemed_by_profile_name",
    "redeemed_at",
    "current_attempt",
)


def _attempts(owners: list[Any], state: str, *, shared: bool, deadline: timedelta) -> None:
    rows = []
    for owner in owners:
        if state == State.IN_PROGRESS:
            started, finished = owner.updated_at, None
        else:
            finished = owner.redeemed_at or owner.updated_at
            started = finished - timedelta(seconds=5)
        rows.append(
            Attempt(
                shared=owner if shared else None,
                code=None if shared else owner,
                attempt=1,
                profile_id=owner.profile_id if shared else owner.redeemed_by_profile_id,
                profile_name=owner.profile_name if shared else owner.redeemed_by_profile_name,
                state=state,
                started_at=started,
                deadline_at=started + deadline,
                finished_at=finished,
                error_code="REDEMPTION_FAILED" if state == State.FAILED else None,
                error_msg="Out of stock in the reward shop" if state == State.FAILED else None,
                response={"success": state == State.REDEEMED, "complete": True}
                if finished
                else None,
            )
        )
    Attempt.objects.bulk_create(rows, batch_size=500)


def _note(actor: Actor, ct: CodeType, counts: dict[str, int]) -> None:
    audit(actor=actor, action="demo.load", code_type_name=ct.name, details={"counts": counts})


def seed_xmas(actor: Actor, now: datetime) -> None:
    """Gift codes with a check character: Available, Redeemed over 30 days, some invalidated."""
    ct = services.code_type_create(
        actor=actor,
        name="xmas-2026",
        description="Christmas 2026 gift codes printed inside greeting cards.",
        custom_code_info={"campaign": "xmas", "value": 25, "currency": "EUR"},
    )
    codes = _generate(
        actor,
        ct.name,
        4000,
        state="Available",
        prefix="XMAS",
        algorithm_details={"includeCheck": True, "length": 12},
        custom_code_info={"value": 25, "currency": "EUR"},
    )
    for i, code in enumerate(codes[:12]):
        services.redeem(actor=actor, profile=_profile("gift", i), scan_code=code.scan_code)
    for code in codes[12:18]:
        services.code_invalidate(
            actor=actor, scan_code=code.scan_code, reason="Card reported stolen at the shop"
        )
    _mark(codes[18:1518], now, State.REDEEMED)
    _mark(
        codes[1518:2018],
        now,
        State.INVALIDATED,
        invalidated_at=now - timedelta(days=3),
        invalidation_reason="Print run damaged",
    )
    _note(actor, ct, {"Available": 1982, "Redeemed": 1512, "Invalidated": 506})


def seed_retail(actor: Actor, now: datetime) -> None:
    """Retail cards: Inactive until sold at the till, a few activated."""
    ct = services.code_type_create(
        actor=actor,
        name="retail-cards",
        description="Retail gift cards on shop shelves; activated at the till when sold.",
        custom_code_info={"value": 50, "currency": "EUR"},
    )
    codes = _generate(actor, ct.name, 3000, algorithm="FiveByFive")
    for i, code in enumerate(codes[:15]):
        services.code_activate(
            actor=actor,
            scan_code=code.scan_code,
            code_type_name=ct.name,
            custom_code_info={"store": f"Berlin-{i % 3 + 1:02d}", "till": i % 4 + 1},
        )
    _note(actor, ct, {"Inactive": 2985, "Available": 15})


def seed_influencer(actor: Actor, now: datetime) -> None:
    """Give-away codes with asynchronous fulfilment: attempts InProgress, Failed, Redeemed."""
    ct = services.code_type_create(
        actor=actor,
        name="influencer-jan",
        description="January influencer give-away; the reward shop confirms each redemption.",
        valid_end=now + timedelta(days=60),
        fulfillment=ASYNC_FULFILLMENT,
    )
    codes = _generate(actor, ct.name, 2600, state="Available", prefix="FAN", custom_code_info={})
    in_progress, failed, redeemed = codes[:1000], codes[1000:2000], codes[2000:2100]
    _mark(in_progress, now, State.IN_PROGRESS)
    _mark(failed, now, State.FAILED)
    _mark(redeemed, now, State.REDEEMED)
    day = timedelta(seconds=DEMO_TIMEOUT_SECONDS)
    _attempts(in_progress, State.IN_PROGRESS, shared=False, deadline=day)
    _attempts(failed, State.FAILED, shared=False, deadline=day)
    _attempts(redeemed, State.REDEEMED, shared=False, deadline=day)
    _note(actor, ct, {"InProgress": 1000, "Failed": 1000, "Redeemed": 100, "Available": 500})


def seed_freestuff(actor: Actor, now: datetime) -> None:
    """A shared promo code with a cap of 500 and a validity window."""
    ct = services.code_type_create(
        actor=actor,
        name="FREESTUFF",
        use_type=UseType.MULTI,
        description="Public promo code posted on social media: 100 gems for the first 500.",
        scan_code="FREESTUFF",
        max_redemptions=500,
        valid_start=now - timedelta(days=7),
        valid_end=now + timedelta(days=60),
        custom_code_info={"reward": "100 gems"},
    )
    for i in range(5):
        services.redeem(actor=actor, profile=_profile("fan", i), scan_code="freestuff")
    rows = []
    for i in range(5, 180):
        at = now - timedelta(minutes=(i * 53) % (7 * 24 * 60))  # inside the window
        profile = _profile("fan", i)
        rows.append(
            SharedRedemption(
                code_type=ct,
                profile_id=profile.id,
                profile_name=profile.name,
                state=State.REDEEMED,
                custom_code_info=ct.custom_code_info,
                created_at=at,
                redeemed_at=at,
                updated_at=at,
            )
        )
    SharedRedemption.objects.bulk_create(rows)
    CodeType.objects.filter(pk=ct.pk).update(redemption_count=F("redemption_count") + len(rows))
    _note(actor, ct, {"Redeemed": 180})


def seed_launch_week(actor: Actor, now: datetime) -> None:
    """A shared code with asynchronous fulfilment: redemptions Redeemed, Failed, InProgress."""
    ct = services.code_type_create(
        actor=actor,
        name="launch-week",
        use_type=UseType.MULTI,
        description="Launch-week shared code; the reward shop confirms each redemption.",
        scan_code="LAUNCH-WEEK",
        fulfillment={**ASYNC_FULFILLMENT, "maxRetries": 1},
        custom_code_info={"reward": "launch skin"},
    )
    plan = ((State.REDEEMED, 300), (State.FAILED, 40), (State.IN_PROGRESS, 25))
    made: dict[str, list[SharedRedemption]] = {}
    i = 0
    for state, count in plan:
        rows = []
        for _ in range(count):
            at = _spread(now, i) if state == State.REDEEMED else now - timedelta(minutes=i % 300)
            profile = _profile("launch", i)
            rows.append(
                SharedRedemption(
                    code_type=ct,
                    profile_id=profile.id,
                    profile_name=profile.name,
                    state=state,
                    custom_code_info=ct.custom_code_info,
                    current_attempt=1,
                    created_at=at - timedelta(seconds=5),
                    redeemed_at=at if state == State.REDEEMED else None,
                    updated_at=at,
                )
            )
            i += 1
        made[state] = SharedRedemption.objects.bulk_create(rows)
    day = timedelta(days=1)
    for made_state, made_rows in made.items():
        _attempts(made_rows, made_state, shared=True, deadline=day)
    CodeType.objects.filter(pk=ct.pk).update(redemption_count=300 + 25)
    _note(actor, ct, {"Redeemed": 300, "Failed": 40, "InProgress": 25})


SEEDS: tuple[tuple[str, Callable[[Actor, datetime], None]], ...] = (
    ("xmas-2026", seed_xmas),
    ("retail-cards", seed_retail),
    ("influencer-jan", seed_influencer),
    ("FREESTUFF", seed_freestuff),
    ("launch-week", seed_launch_week),
)


def login_box(url: str, logins: list[tuple[str, str, str]]) -> str:
    """A framed block with the sign-in line and one line per demo login."""
    admin_password = next(pw for user, pw, _ in logins if user == "admin")
    lines = [
        "Demo logins (new passwords each time load_demo_data runs)",
        "",
        f"Sign in at {url} as admin / {admin_password}",
        "",
        *(f"  {user:<8} / {pw}   {what}" for user, pw, what in logins),
    ]
    width = max(len(line) for line in lines)
    rule = "+" + "-" * (width + 2) + "+"
    return "\n".join([rule, *(f"| {line:<{width}} |" for line in lines), rule])


class Command(BaseCommand):
    help = (
        "Load demo code types (personal and shared) with codes in every state, and a staff "
        "login per role (admin, ops, support, viewer) whose new passwords are printed. "
        "Safe to run again: existing demo types are kept as they are."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--url", default="http://127.0.0.1:8000/", help="Portal address shown in the output."
        )

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        actor = Actor.system("cli:load_demo_data")
        started = time.monotonic()
        now = timezone.now()
        for name, seed in SEEDS:
            if CodeType.objects.filter(name=name).exists():
                self.stdout.write(f"  {name}: already there, left as it is")
                continue
            with transaction.atomic():
                seed(actor, now)
            total = Code.objects.filter(code_type__name=name, is_shared_anchor=False).count()
            shared = SharedRedemption.objects.filter(code_type__name=name).count()
            self.stdout.write(
                f"  {name}: created with {total:,} codes"
                if total
                else f"  {name}: created with {shared:,} shared redemptions"
            )
        logins = []
        for username, role, what in LOGINS:
            user, password, _ = ensure_staff_user(actor=actor, username=username, role=role)
            # The printed password alone signs a demo login in: no second factor, no lock.
            if selectors.has_second_factor(user):
                staff.staff_user_second_factor_reset(actor=actor, user_id=user.pk)
            if sign_in_limits.locked_accounts([username]):
                staff.staff_user_unlock(actor=actor, user_id=user.pk)
            logins.append((username, password, what))
        batches = Batch.objects.count()
        self.stdout.write(
            f"Demo data ready in {time.monotonic() - started:.1f} s ({batches} batches)."
        )
        self.stdout.write(login_box(url, logins))
