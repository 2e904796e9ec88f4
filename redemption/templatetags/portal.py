"""Template helpers of the staff portal: UTC times, numbers, state badges, pretty JSON."""

import json
from datetime import UTC, datetime
from typing import Any

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.utils.html import format_html
from django.utils.safestring import mark_safe

register = template.Library()


@register.filter
def utc(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """Render a datetime as <time> in UTC with an explicit label; an em dash when empty."""
    if not value:
        return mark_safe('<span class="muted">—</span>')
    value = value.astimezone(UTC)
    return format_html(
        '<time datetime="{}">{} <abbr title="Coordinated Universal Time">UTC</abbr></time>',
        value.isoformat(),
        value.strftime(fmt),
    )


@register.filter
def num(value: Any) -> str:
    """Whole numbers with thousands separators; an em dash for None."""
    if value is None or value == "":
        return "—"
    if type(value) is int:
        # What intcomma gives in the portal's one locale (en-us), at a twentieth of the cost:
        # a page of the inventory draws 350 numbers.
        return f"{value:,}"
    return intcomma(value)


@register.filter
def state_badge(state: str | None) -> str:
    if not state:
        return mark_safe('<span class="muted">—</span>')
    return format_html('<span class="badge state-{}">{}</span>', state.lower(), state)


@register.filter
def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


@register.filter
def compact_json(value: Any, limit: int = 80) -> str:
    """One-line JSON, cut to `limit` characters; empty objects render as an empty string."""
    if value in (None, {}, []):
        return ""
    text = json.dumps(value, separators=(", ", ": "), ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@register.inclusion_tag("redemption/_json.html")
def json_block(value: Any, block_id: str, label: str = "") -> dict[str, Any]:
    """A <pre> of pretty JSON with a copy button that JavaScript reveals."""
    return {
        "text": json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
        "block_id": block_id,
        "label": label,
        "empty": value in (None, {}, []),
    }


@register.filter
def percent(done: int, total: int) -> int:
    if not total:
        return 0
    return min(100, int(done * 100 / total))


@register.filter
def shown_code(code: Any, reader: Any) -> str:
    """A personal code's scan code as `reader` (masking.CodeReader) may see it."""
    return str(reader.code_text(code))


@register.filter
def shown_canonical(code: Any, reader: Any) -> str:
    """A personal code's canonical form as `reader` may see it."""
    return str(reader.canonical_text(code))
