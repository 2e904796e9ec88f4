"""A code's code type and batch must exist, on every path, as the foreign keys guaranteed.

PostgreSQL checks them with statement-level triggers (`redemption.db.parent_checks`, migration
0016), SQLite with its foreign keys; the guarantee is the same on both, checked at the latest
when the transaction commits.
"""

import threading
import uuid

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from redemption.db import code_inserts
from redemption.models import Batch, Code, CodeType
from tests.factories import CodeFactory, CodeTypeFactory

pytestmark = pytest.mark.django_db(transaction=True)

MISSING_TYPE = 2**40


def _batch(ct: CodeType) -> Batch:
    return Batch.objects.create(code_type=ct, kind="generate", created_at=timezone.now())


def _insert(rows, *, code_type_id: int, batch_id: uuid.UUID) -> int:
    return code_inserts.codes_insert(
        rows,
        code_type_id=code_type_id,
        batch_id=batch_id,
        now=timezone.now(),
        state="Inactive",
        info_json="{}",
    )


def test_a_code_of_a_code_type_that_does_not_exist_is_refused():
    with pytest.raises(IntegrityError), transaction.atomic():
        CodeFactory(code_type=CodeType(pk=MISSING_TYPE, name="ghost"))

    assert Code.objects.count() == 0


@pytest.mark.parametrize("missing", ["code type", "batch"])
def test_a_bulk_insert_into_a_missing_parent_is_refused(missing):
    ct = CodeTypeFactory()
    batch = _batch(ct)
    ids = {
        "code_type_id": MISSING_TYPE if missing == "code type" else ct.pk,
        "batch_id": uuid.uuid4() if missing == "batch" else batch.pk,
    }

    with pytest.raises(IntegrityError), transaction.atomic():
        _insert([("NEW-0001", "NEW0001"), ("NEW-0002", "NEW0002")], **ids)

    assert Code.objects.count() == 0


def test_a_bulk_insert_into_existing_parents_goes_in():
    ct = CodeTypeFactory()
    batch = _batch(ct)

    with transaction.atomic():
        added = _insert([("NEW-0001", "NEW0001")], code_type_id=ct.pk, batch_id=batch.pk)

    assert added == 1
    assert Code.objects.get().batch_id == batch.pk


def test_moving_a_code_to_a_missing_batch_or_type_is_refused():
    code = CodeFactory(batch=_batch(CodeTypeFactory()))

    with pytest.raises(IntegrityError), transaction.atomic():
        Code.objects.filter(pk=code.pk).update(batch_id=uuid.uuid4())
    with pytest.raises(IntegrityError), transaction.atomic():
        Code.objects.filter(pk=code.pk).update(code_type_id=MISSING_TYPE)

    code.refresh_from_db()
    assert code.batch is not None


def test_a_parent_that_codes_still_refer_to_cannot_be_deleted_behind_the_orm():
    ct = CodeTypeFactory()
    batch = _batch(ct)
    CodeFactory(code_type=ct, batch=batch)

    # _raw_delete: one DELETE statement, without the ORM's on_delete handling.
    with pytest.raises(IntegrityError), transaction.atomic():
        Batch.objects.filter(pk=batch.pk)._raw_delete(Batch.objects.db)
    with pytest.raises(IntegrityError), transaction.atomic():
        Batch.objects.filter(code_type=ct)._raw_delete(Batch.objects.db)
        CodeType.objects.filter(pk=ct.pk)._raw_delete(CodeType.objects.db)

    assert Batch.objects.filter(pk=batch.pk).exists()
    assert CodeType.objects.filter(pk=ct.pk).exists()


def test_the_orm_still_detaches_codes_from_a_deleted_batch_and_deletes_a_types_codes():
    ct = CodeTypeFactory()
    batch = _batch(ct)
    code = CodeFactory(code_type=ct, batch=batch)
    other = CodeFactory(batch=_batch(CodeTypeFactory()))

    with transaction.atomic():
        batch.delete()
    code.refresh_from_db()
    assert code.batch_id is None

    with transaction.atomic():
        other.code_type.delete()
    assert not Code.objects.filter(pk=other.pk).exists()
    assert Code.objects.filter(pk=code.pk).exists()


def test_a_batch_deleted_while_codes_go_into_it_waits_for_them_and_is_refused():
    ct = CodeTypeFactory()
    batch = _batch(ct)
    inserted, release = threading.Event(), threading.Event()
    outcome: dict[str, object] = {}

    def insert() -> None:
        try:
            with transaction.atomic():
                _insert([("NEW-0001", "NEW0001")], code_type_id=ct.pk, batch_id=batch.pk)
                inserted.set()
                release.wait(10)
        finally:
            inserted.set()
            connection.close()

    def delete() -> None:
        try:
            with transaction.atomic():
                Batch.objects.filter(pk=batch.pk)._raw_delete(Batch.objects.db)
            outcome["delete"] = "committed"
        except IntegrityError:
            outcome["delete"] = "refused"
        finally:
            connection.close()

    inserter = threading.Thread(target=insert)
    inserter.start()
    assert inserted.wait(10)
    deleter = threading.Thread(target=delete)
    deleter.start()
    deleter.join(0.5)  # the delete waits for the inserting transaction (SQLite: its lock)
    release.set()
    inserter.join(10)
    deleter.join(10)

    assert outcome == {"delete": "refused"}
    assert Code.objects.get().batch_id == batch.pk
