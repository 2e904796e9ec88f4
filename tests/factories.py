"""factory_boy factories for the redemption domain."""

import factory
from django.utils import timezone

from redemption import codes
from redemption.models import Code, CodeType, SharedRedemption, State, UseType


class CodeTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CodeType

    name = factory.Sequence(lambda n: f"type-{n}")
    use_type = UseType.SINGLE
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class SharedCodeTypeFactory(CodeTypeFactory):
    """A shared type with its namespace anchor row, as code_type_create makes it."""

    class Meta:
        skip_postgeneration_save = True

    use_type = UseType.MULTI
    scan_code = factory.Sequence(lambda n: f"SHARED{n:04d}")
    canonical_scan_code = factory.LazyAttribute(lambda o: codes.canonical(o.scan_code))

    @factory.post_generation
    def anchor(obj, create, extracted, **kwargs):
        if create:
            now = timezone.now()
            Code.objects.create(
                code_type=obj,
                is_shared_anchor=True,
                scan_code=obj.scan_code,
                canonical=obj.canonical_scan_code,
                state=State.AVAILABLE,
                created_at=now,
                updated_at=now,
            )


class CodeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Code

    code_type = factory.SubFactory(CodeTypeFactory)
    scan_code = factory.Sequence(lambda n: f"TEST-{n:08d}")
    canonical = factory.LazyAttribute(lambda o: codes.canonical(o.scan_code))
    state = State.AVAILABLE
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


class SharedRedemptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SharedRedemption

    code_type = factory.SubFactory(SharedCodeTypeFactory)
    profile_id = factory.Sequence(lambda n: f"profile-{n}")
    state = State.REDEEMED
    created_at = factory.LazyFunction(timezone.now)
    redeemed_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)
