"""Campaigns at scale: the inventory page and GET /server/code-types with 5,000 code types."""

import time

from bench.harness import Bench, Result, log, median, ms, timed

N_TYPES = 5_000
CODES_PER_TYPE = 4  # personal types; every tenth type is shared, with one redemption
TARGET_MS = 150  # the inventory summary's target (SPEC §9), now for a whole rendered page


def _populate() -> None:
    """5,000 types (names camp-0000…, a tenth shared, a fifth with a webhook, a twentieth
    disabled, a fiftieth archived), each with a few codes or one shared redemption."""
    from django.db import transaction
    from django.utils import timezone

    from redemption import codes as code_rules
    from redemption.db import counts
    from redemption.models import Code, CodeType, SharedRedemption, State, UseType

    now = timezone.now()
    types = []
    for i in range(N_TYPES):
        shared = i % 10 == 0
        scan = f"BENCHSHARED{i:05d}" if shared else None
        types.append(
            CodeType(
                name=f"camp-{i:04d}",
                description=f"Weekly sale {i % 97}" if i % 3 else "",
                use_type=UseType.MULTI if shared else UseType.SINGLE,
                scan_code=scan,
                canonical_scan_code=code_rules.canonical(scan) if scan else None,
                fulfillment_url="https://shop.example/hook" if i % 5 == 0 else "",
                is_disabled=i % 20 == 0,
                archived_at=now if i % 50 == 7 else None,
                created_at=now,
                updated_at=now,
            )
        )
    with transaction.atomic():
        made = CodeType.objects.bulk_create(types, batch_size=1000)
        rows, redemptions = [], []
        states = [State.INACTIVE, State.AVAILABLE, State.REDEEMED, State.INVALIDATED]
        for ct in made:
            if ct.is_shared:
                canon = ct.canonical_scan_code or ""
                rows.append(_code(ct, ct.scan_code or canon, canon, State.AVAILABLE, now, True))
                redemptions.append(
                    SharedRedemption(
                        code_type=ct,
                        profile_id="p-bench",
                        state=State.REDEEMED,
                        redeemed_at=now,
                        created_at=now,
                        updated_at=now,
                    )
                )
                continue
            for n, state in enumerate(states[:CODES_PER_TYPE]):
                scan = f"B{ct.pk:06d}X{n:03d}"
                rows.append(_code(ct, scan, scan, state, now, False))
        Code.objects.bulk_create(rows, batch_size=5000)
        SharedRedemption.objects.bulk_create(redemptions, batch_size=5000)
    folded = counts.compact()
    log(f"types: {len(made):,} code types, {len(rows):,} codes, {folded:,} count rows")


def _code(ct, scan, canon, state, now, anchor):
    from redemption.models import Code, State

    redeemed = state == State.REDEEMED
    return Code(
        code_type=ct,
        scan_code=scan,
        canonical=canon,
        state=state,
        is_shared_anchor=anchor,
        redeemed_by_profile_id="p-bench" if redeemed else None,
        redeemed_at=now if redeemed else None,
        invalidated_at=now if state == State.INVALIDATED else None,
        created_at=now,
        updated_at=now,
    )


def types(b: Bench) -> None:
    """Time the inventory page (first page, a search, filters, a deep page) and the API list."""
    from django.contrib.auth.models import User
    from django.test import Client
    from django.urls import reverse

    from redemption import selectors
    from redemption.actors import Actor
    from redemption.models import CodeType
    from redemption.services import keys

    if CodeType.objects.filter(name__startswith="camp-").count() < N_TYPES:
        start = time.perf_counter()
        _populate()
        b.run.add(
            Result(
                f"setup: {N_TYPES:,} code types with their codes (bulk insert, untimed target)",
                f"{time.perf_counter() - start:.1f} s",
            )
        )
    user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "bench@example.invalid", None
    )
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    inventory = reverse("redemption:inventory")
    deep = selectors.code_types_page(limit=50)
    for _ in range(49):  # the cursor of the 50th page of 50 (types 2,450…)
        deep = selectors.code_types_page(limit=50, cursor=deep.next_cursor)

    def get(url: str, headers: dict[str, str] | None = None):
        def fetch():
            response = client.get(url, headers=headers or {})
            assert response.status_code == 200, (url, response.status_code)

        return fetch

    variants = [
        ("first page (50 of 4,900 unarchived)", {}, ""),
        ("search 'sale 42' (name or description)", {"search": "sale 42"}, "?search=sale+42"),
        (
            "filters: personal, enabled, with webhook",
            {"use_type": "SINGLE", "disabled": False, "has_webhook": True},
            "?use_type=SINGLE&disabled=false&has_webhook=true",
        ),
        ("archived only", {"archived": True}, "?archived=only"),
        (
            "51st page (keyset cursor)",
            {"cursor": deep.next_cursor},
            f"?after={deep.next_cursor}",
        ),
    ]
    for label, kwargs, query in variants:

        def read(kwargs=kwargs):
            selectors.code_types_page(**kwargs, limit=50, with_totals=True)

        seconds = timed(read, repeat=5)
        b.run.add(
            Result(
                f"inventory read with {N_TYPES:,} code types, {label}: code_types_page "
                "(50 rows, their counts, totals by state), median of 5",
                ms(median(seconds)),
                f"≤ {TARGET_MS} ms",
                "—",
                median(seconds) * 1000 <= TARGET_MS,
            )
        )
        fetch = get(inventory + query)
        walls, cpus = [], []
        fetch()
        for _ in range(5):
            wall, cpu = time.perf_counter(), time.process_time()
            fetch()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        b.run.add(
            Result(
                "… the whole page rendered (Django test client, 50 rows × 12 columns): "
                "wall / CPU, median of 5",
                f"{ms(median(walls))} / {ms(median(cpus))}",
            )
        )
    _, secret = keys.server_key_create(actor=Actor.system("bench"), name="bench-types")
    auth = {"Authorization": f"Bearer {secret}"}
    for label, query in (
        ("limit=100", "?limit=100"),
        ("search=sale 42", "?search=sale%2042"),
        ("hasWebhook=true&disabled=false", "?hasWebhook=true&disabled=false"),
    ):
        seconds = timed(get("/api/v1/server/code-types" + query, auth), repeat=5)
        b.run.add(
            Result(
                f"GET /server/code-types {label}, {N_TYPES:,} types, median of 5",
                ms(median(seconds)),
            )
        )
    # For comparison: what the inventory read before it paged (every type with its counts).
    everything = timed(selectors.inventory_summary, repeat=5)
    b.run.add(
        Result(
            f"reference: every one of {N_TYPES:,} types with counts (inventory_summary), median",
            ms(median(everything)),
        )
    )
