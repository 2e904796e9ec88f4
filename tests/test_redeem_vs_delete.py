"""A redeem that loses its code to a delete answers REDEMPTION_CODE_NOT_FOUND, never a 500."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from redemption import exceptions as exc
from redemption.actors import Actor, Profile
from redemption.db import lookups, redeem_at_once
from redemption.models import Code, State
from redemption.services import bulk, redeem
from tests.factories import CodeFactory, CodeTypeFactory


def _delete_right_after_the_lookup(monkeypatch) -> None:
    """Make the full redeem find its code, then lose the row before it can claim it.

    The one-statement redeem (PostgreSQL) has no such window: it is switched off here so the
    full path, which every database runs for fulfilment and refusals, meets the race.
    """
    monkeypatch.setattr(redeem_at_once, "supported", lambda: False)
    real = lookups.code_with_type

    def lookup_then_delete(canon: str):
        found = real(canon)
        if found is not None:
            Code.objects.filter(pk=found.pk).delete()
        return found

    monkeypatch.setattr(lookups, "code_with_type", lookup_then_delete)


@pytest.mark.django_db
@pytest.mark.parametrize("fulfilment_url", ["", "http://127.0.0.1:9/never-called"])
def test_a_code_deleted_between_lookup_and_claim_is_not_found(monkeypatch, fulfilment_url):
    code = CodeFactory(
        code_type=CodeTypeFactory(fulfillment_url=fulfilment_url), state=State.AVAILABLE
    )
    _delete_right_after_the_lookup(monkeypatch)

    with pytest.raises(exc.CodeNotFoundError):
        redeem(actor=Actor.profile("p-1"), profile=Profile("p-1"), scan_code=code.scan_code)

    assert not Code.objects.filter(pk=code.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_redeems_racing_a_delete_all_job_end_redeemed_or_not_found(ops, settings):
    settings.REDEEM_MAX_FAILED_PER_PROFILE = 10_000
    settings.REDEEM_MAX_FAILED_PER_IP = 10_000
    settings.JOB_BATCH_SIZE = 7  # many small locked batches, so the race has many windows
    ct = CodeTypeFactory()
    codes = [CodeFactory(code_type=ct, scan_code=f"GONE-{i:04d}-AAAA") for i in range(120)]
    job = bulk.job_delete_codes_start(
        actor=ops, code_type_name=ct.name, states=["Available", "Redeemed"], confirm_name=ct.name
    )
    start = threading.Barrier(5)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def redeem_some(worker: int) -> None:
        start.wait(timeout=30)
        try:
            for code in codes[worker::4]:
                try:
                    redeem(
                        actor=Actor.profile(f"p-{worker}"),
                        profile=Profile(f"p-{worker}"),
                        scan_code=code.scan_code,
                    )
                    outcome = "REDEEMED"
                except exc.RedemptionError as err:
                    outcome = err.code
                with lock:
                    outcomes[outcome] += 1
        finally:
            connection.close()

    def delete_all() -> None:
        start.wait(timeout=30)
        try:
            bulk.run_job(job.pk)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=5) as pool:
        futures = [pool.submit(redeem_some, w) for w in range(4)]
        futures.append(pool.submit(delete_all))
        for future in futures:
            future.result()  # an unexpected exception (the old DoesNotExist) fails the test here

    assert sum(outcomes.values()) == len(codes)
    assert set(outcomes) <= {"REDEEMED", exc.CodeNotFoundError.code}, outcomes
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert not Code.objects.filter(code_type=ct).exists()
