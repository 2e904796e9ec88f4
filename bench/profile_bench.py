"""One profile's records, a page at a time: the first and a deep page of 20,000 records.

The profile lists (`GET /client/redeemed-codes`, `GET /server/profiles/{id}/redeemed-codes`,
User Monitoring) page newest first by key over personal codes and shared redemptions. With
the (profile, COALESCE(redeemed_at, updated_at), id) indexes a page reads about `limit` rows
of each table from the cursor on, so the 150th page costs what the first does. The reference
is what the lists did before: read every record of the profile and sort them in Python.
"""

import random
from datetime import timedelta

from bench.harness import Bench, Result, log, median, ms, timed

PROFILE = "bench-profile"
RECORDS = 20_000
SHARED = 2_000  # shared redemptions among the records (one per shared code type)
OTHERS = 200_000  # records of other profiles, so the index holds more than one profile
LIMIT = 100
DEEP = 150  # the page measured deep: records 14,901-15,000


def _setup(b: Bench) -> None:
    from django.db import connection
    from django.utils import timezone

    from redemption import codes
    from redemption.ids import uuid7
    from redemption.models import Code, CodeType, SharedRedemption, State, UseType

    others = OTHERS // 10 if b.quick else OTHERS
    log(f"profile: {RECORDS:,} records of one profile, {others:,} of 2,000 others")
    now = timezone.now()
    personal_type = CodeType.objects.create(name="bench-profile", created_at=now, updated_at=now)
    start = now - timedelta(days=400)

    def code(i: int, profile: str, at) -> Code:
        scan = f"BP{i:010d}"
        return Code(
            id=uuid7(),
            code_type=personal_type,
            scan_code=scan,
            canonical=codes.canonical(scan),
            state=State.REDEEMED,
            redeemed_by_profile_id=profile,
            redeemed_at=at,
            created_at=start,
            updated_at=at,
        )

    personal = RECORDS - SHARED
    # Every tenth record shares its second with another: ties the id must break.
    batch: list[Code] = []
    for i in range(personal + others):
        mine = i < personal
        at = start + timedelta(seconds=(i // 10 * 10 if i % 10 == 1 else i) * 7)
        batch.append(code(i, PROFILE if mine else f"other-{i % 2000}", at))
        if len(batch) == 10_000:
            Code.objects.bulk_create(batch)
            batch = []
    Code.objects.bulk_create(batch)
    shared_types = CodeType.objects.bulk_create(
        CodeType(
            name=f"bench-shared-{i}",
            use_type=UseType.MULTI,
            scan_code=f"BPS{i:08d}",
            canonical_scan_code=f"BPS{i:08d}",
            created_at=now,
            updated_at=now,
        )
        for i in range(SHARED)
    )
    SharedRedemption.objects.bulk_create(
        SharedRedemption(
            id=uuid7(),
            code_type=ct,
            profile_id=PROFILE,
            state=State.REDEEMED,
            created_at=at,
            redeemed_at=at,
            updated_at=at,
        )
        for ct, at in (
            (ct, start + timedelta(seconds=random.randrange(personal * 7))) for ct in shared_types
        )
    )
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) redemption_code")
        cursor.execute("VACUUM (ANALYZE) redemption_sharedredemption")


def _explain(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def profile(b: Bench) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from redemption import selectors
    from redemption.actors import Actor
    from redemption.models import Code, SharedRedemption
    from redemption.selectors.redemptions import PROFILE_RECORDS, RECENT
    from redemption.services import keys

    if not Code.objects.filter(redeemed_by_profile_id=PROFILE).exists():
        _setup(b)
    total = (
        Code.objects.filter(redeemed_by_profile_id=PROFILE).count()
        + SharedRedemption.objects.filter(profile_id=PROFILE).count()
    )

    # The cursor of page DEEP, taken from the keys of every record (setup only, not timed).
    keys_desc = sorted(
        [
            (r, pk)
            for qs in (
                Code.objects.filter(redeemed_by_profile_id=PROFILE),
                SharedRedemption.objects.filter(profile_id=PROFILE),
            )
            for r, pk in qs.annotate(recent=RECENT).values_list("recent", "pk")
        ],
        key=lambda k: (k[0], k[1].int),
        reverse=True,
    )
    deep_key = keys_desc[(DEEP - 1) * LIMIT - 1]
    deep_cursor = selectors.cursor_encode(PROFILE_RECORDS, list(deep_key))

    def first_page():
        return selectors.profile_records_page(PROFILE, redeemed_only=False, limit=LIMIT)

    def deep_page():
        return selectors.profile_records_page(
            PROFILE, redeemed_only=False, limit=LIMIT, cursor=deep_cursor
        )

    def everything_sorted():  # what the lists did before paging
        records = [
            *Code.objects.select_related("code_type").filter(redeemed_by_profile_id=PROFILE),
            *SharedRedemption.objects.select_related("code_type").filter(profile_id=PROFILE),
        ]
        records.sort(key=lambda r: r.redeemed_at or r.updated_at, reverse=True)
        return records[:LIMIT]

    deep = deep_page()
    assert [(r.recent, r.pk) for r in deep.records] == keys_desc[
        (DEEP - 1) * LIMIT : DEEP * LIMIT
    ], "the deep page is not the records it should be"
    first = timed(first_page, repeat=9)
    deeps = timed(deep_page, repeat=9)
    old = timed(everything_sorted, repeat=3)
    b.run.add(
        Result(
            f"profile list, {total:,} records: 1st / {DEEP}th page of {LIMIT} "
            "(profile_records_page), median of 9",
            f"{ms(median(first))} / {ms(median(deeps))}",
            "deep page ≈ first page",
            f"every record loaded and sorted (before): {ms(median(old))}",
            median(deeps) <= 3 * median(first) + 0.005,
        )
    )

    # The same pages over HTTP semantics (Django test client, JSON rendering included).
    _, secret = keys.server_key_create(actor=Actor.system("bench"), name="bench-profile")
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {secret}")
    url = f"/api/v1/server/profiles/{PROFILE}/redeemed-codes?limit={LIMIT}"

    def get(u):
        def fetch():
            response = client.get(u)
            assert response.status_code == 200, response.content[:200]

        return fetch

    api_first = timed(get(url), repeat=5)
    api_deep = timed(get(f"{url}&cursor={deep_cursor}"), repeat=5)
    b.run.add(
        Result(
            f"GET /server/profiles/{{id}}/redeemed-codes, {total:,} records: "
            f"1st / {DEEP}th page, median of 5",
            f"{ms(median(api_first))} / {ms(median(api_deep))}",
        )
    )

    with CaptureQueriesContext(connection) as ctx:
        deep_page()
    plans = [f"-- {q['sql']}\n{_explain(q['sql'])}\n" for q in ctx.captured_queries]
    explain_path = b.log_dir / "profile-explain.txt"
    explain_path.write_text("\n".join(plans))
    log(f"profile: query plans of the deep page written to {explain_path} (--keep-files)")
    for plan in plans:
        if "Sort" in plan:
            b.run.note(
                "profile: for one table PostgreSQL chose a top-N sort of the rows its index "
                "bounded from the cursor (a few hundred) over an ordered index scan"
            )
