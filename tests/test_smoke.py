from redemption.actors import Profile
from redemption.services import redeem
from tests.factories import CodeFactory


def test_redeem_an_available_code(db, system_actor):
    code = CodeFactory(scan_code="ABCD-EFGH-JKMN")
    result = redeem(actor=system_actor, profile=Profile("p1"), scan_code="abcd efgh jkmn")
    assert result.record.pk == code.pk
    assert result.record.state == "Redeemed"
