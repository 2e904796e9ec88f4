"""Who sees live codes: a Viewer sees a personal code that can still be redeemed masked.

A live code (Inactive, Available, InProgress or Failed) is bearer value. For a Viewer every
page shows it as `K7QM-••••-••••-3XJ9`: the first and last MASK_KEEP characters of its display
form (MASK_KEEP_SHORT for codes under MASK_SHORT_BELOW characters; fewer still for tiny codes,
so that at most half shows), `•` for the rest, separators kept. Redeemed and Invalidated codes
and shared codes' scan codes are shown in full. A Viewer's links to codes are by id, so no URL
carries a live code either.

Pages get a `CodeReader` for the signed-in user and pass it explicitly to every table, filter
and template tag that shows a code: the mask is decided here and nowhere else.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse

from redemption import codes, permissions, rules
from redemption.models import State

LIVE_STATES = frozenset({State.INACTIVE, State.AVAILABLE, State.IN_PROGRESS, State.FAILED})
SEPARATORS = frozenset("- \t")


def mask(display: str) -> str:
    """The masked form of a scan code as written (separators kept in place)."""
    n = sum(1 for ch in display if ch not in SEPARATORS)
    keep = rules.MASK_KEEP if n >= rules.MASK_SHORT_BELOW else min(rules.MASK_KEEP_SHORT, n // 4)
    shown, seen = [], 0
    for ch in display:
        if ch in SEPARATORS:
            shown.append(ch)
            continue
        shown.append(ch if seen < keep or seen >= n - keep else rules.MASK_CHAR)
        seen += 1
    return "".join(shown)


def is_live(state: str | None) -> bool:
    """True for a state in which a personal code can still be redeemed (or one not known)."""
    return state is None or state in LIVE_STATES


def code_detail_url(code: Any) -> str:
    """The by-id address of a code's page (safe to show anyone)."""
    return reverse("redemption:code_detail_by_id", args=[code.pk])


@dataclass(frozen=True)
class CodeReader:
    """How one reader sees codes: in full, or (a Viewer) with live codes masked.

    `revealed` holds canonical codes known to be shown in full although no state is at hand
    (audit rows: their codes were looked up as Redeemed, Invalidated or shared).
    """

    masks_live: bool
    revealed: frozenset[str] = field(default_factory=frozenset)

    def text(self, scan_code: str | None, state: str | None = None) -> str:
        """A personal code's scan code as this reader may see it; pass its state if known."""
        if not scan_code or not self.masks_live:
            return scan_code or ""
        if state is None and codes.canonical(scan_code) in self.revealed:
            return scan_code
        return mask(scan_code) if is_live(state) else scan_code

    def code_text(self, code: Any) -> str:
        """The scan code of a Code as this reader may see it."""
        return self.text(code.scan_code, code.state)

    def canonical_text(self, code: Any) -> str:
        return self.text(code.canonical, code.state)

    def code_url(self, code: Any) -> str:
        """The address of a code's page: by id for a reader who must not see it in a URL, and
        for a stored code no URL can name (one that migration 0010 had to leave with its old,
        whitespace-carrying canonical form)."""
        if self.masks_live or not rules.is_canonical_scan_code(code.canonical):
            return code_detail_url(code)
        return reverse("redemption:code_detail", args=[code.canonical])

    def with_revealed(self, canonicals: Iterable[str]) -> "CodeReader":
        return CodeReader(masks_live=self.masks_live, revealed=frozenset(canonicals))


FULL = CodeReader(masks_live=False)
MASKED = CodeReader(masks_live=True)


def reader_for(user: Any) -> CodeReader:
    """Viewers see live codes masked; Support, Ops and superusers see them in full."""
    if permissions.role_rank(user) == permissions.ROLE_RANK[permissions.VIEWER]:
        return MASKED
    return FULL
