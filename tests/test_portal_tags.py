"""Template helpers of the portal (redemption/templatetags/portal.py)."""

import pytest
from django.contrib.humanize.templatetags.humanize import intcomma

from redemption.templatetags.portal import num


@pytest.mark.parametrize("value", [0, 7, 999, 1000, 12345, 1_000_000, 10_000_000_000, -4321])
def test_a_whole_number_reads_as_intcomma_writes_it(value):
    assert num(value) == intcomma(value)


@pytest.mark.parametrize(("value", "shown"), [(None, "—"), ("", "—"), ("12345", "12,345")])
def test_no_number_is_a_dash_and_text_is_grouped_too(value, shown):
    assert num(value) == shown
