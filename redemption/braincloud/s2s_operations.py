"""What an S2S backend may ask for on /s2sdispatcher: the `redemptionCode` operations of
brainCloud's S2S API, each translated to the service its JSON API twin calls.

Each operation checks its message's `data` with the twin's own fields (the code's scan code,
which the JSON API takes from the path, joins them), needs the twin's scope (SPEC §13) and
answers the record itself as `data`, in brainCloud's shape (epoch milliseconds, 0-based
attempts). Fields brainCloud backends send that mean nothing here are dropped, as brainCloud
drops unknown ones.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.core import signing
from django.utils import timezone

from redemption import codes, rules, selectors, services
from redemption import exceptions as exc
from redemption.actors import Actor
from redemption.api.endpoints.server import SERVER_ENDPOINTS
from redemption.api.endpoints.shared import (
    CODE_TYPE,
    CODE_TYPE_SETTINGS,
    NEW_SCAN_CODE,
    SCAN_CODE,
)
from redemption.api.handlers import generate_kwargs
from redemption.api.spec import Operation
from redemption.api.validation import Field, clean_object
from redemption.braincloud.records import epoch_ms, wire_record_of
from redemption.models import CodeType, UseType
from redemption.records import code_type_record
from redemption.selectors.code_types import code_types_count
from redemption.selectors.redemptions import shared_redemption_of
from redemption.services import bulk, keys

SERVICE = "redemptionCode"
HEARTBEAT = ("heartbeat", "HEARTBEAT")
PAGE_CONTEXT_SALT = "redemption.s2s.code-type-page"

# The JSON API's operations by id: their body fields and scopes are the S2S operations' too.
TWINS: dict[str, Operation] = {
    op.operation_id: op for ep in SERVER_ENDPOINTS for op in ep.operations
}


@dataclass
class S2SContext:
    """One S2S call's caller: the app it signed in for and its server key."""

    app_id: str
    key: Any  # ServerKey

    @property
    def actor(self) -> Actor:
        return Actor.server_key(self.key)


def _twin_fields(twin: str, *extra: Field) -> tuple[Field, ...]:
    return (*extra, *(TWINS[twin].body or ()))


def _known(fields: tuple[Field, ...], data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields}
    return clean_object(fields, {k: v for k, v in data.items() if k in names})


def add_code(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    b = _known(_twin_fields("addCode"), data)
    code = services.code_add(
        actor=ctx.actor,
        code_type_name=b["codeType"],
        scan_code=b["scanCode"],
        state=b.get("codeState"),
        custom_code_info=b.get("customCodeInfo"),
    )
    return wire_record_of(code, app_id=ctx.app_id)


def activate_code(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    b = _known(_twin_fields("activateCode", SCAN_CODE), data)
    code = services.code_activate(
        actor=ctx.actor,
        scan_code=b["scanCode"],
        code_type_name=b["codeType"],
        custom_code_info=b.get("customCodeInfo"),
    )
    return wire_record_of(code, app_id=ctx.app_id)


def invalidate_code(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    b = _known(_twin_fields("invalidateCode", SCAN_CODE), data)
    code = services.code_invalidate(
        actor=ctx.actor,
        scan_code=b["scanCode"],
        code_type_name=b["codeType"],
        reason=b.get("invalidationReason"),
    )
    return wire_record_of(code, app_id=ctx.app_id)


def update_custom_info(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    b = _known(_twin_fields("updateCodeCustomInfo", SCAN_CODE), data)
    code = services.code_update_custom_info(
        actor=ctx.actor,
        scan_code=b["scanCode"],
        code_type_name=b["codeType"],
        version=b["version"],
        custom_code_info=b["customCodeInfo"],
    )
    return wire_record_of(code, app_id=ctx.app_id)


def _generate_kwargs(ctx: S2SContext, twin: str, data: dict[str, Any]) -> dict[str, Any]:
    data = dict(data)
    # brainCloud names the options `algorithmDetailsJson`; its `emailAddress` has no use here.
    if "algorithmDetailsJson" in data and "algorithmDetails" not in data:
        data["algorithmDetails"] = data.pop("algorithmDetailsJson")
    b = _known(_twin_fields(twin, CODE_TYPE), data)
    return generate_kwargs(ctx.actor, b["codeType"], b)


def _generating(kwargs: dict[str, Any]) -> str:
    algorithm = kwargs.get("algorithm") or "Crockford"
    check = bool((kwargs.get("algorithm_details") or {}).get("includeCheck"))
    return (
        f"Generating {kwargs['quantity']} redemption codes using {algorithm} algorithm and "
        f"options (includeCheck={'true' if check else 'false'})"
    )


def generate_codes_inline(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    kwargs = _generate_kwargs(ctx, "generateCodesInline", data)
    batch, scan_codes = bulk.codes_generate_inline(**kwargs)
    return {
        "generatedScanCodes": scan_codes,
        "batchId": str(batch.pk),
        "message": _generating(kwargs),
    }


def generate_codes(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    kwargs = _generate_kwargs(ctx, "generateCodesJob", data)
    job = bulk.job_generate_start(**kwargs)
    return {"jobId": str(job.pk), "message": _generating(kwargs)}


_ASYNC_FIELDS = (
    SCAN_CODE,
    CODE_TYPE,
    Field("redemptionCodeId", "string", min=1, max=64),
    Field("profileId", "string", min=rules.PROFILE_ID_MIN, max=rules.PROFILE_ID_MAX),
    # On the wire attempts count from 0 (the JSON API's number minus one).
    Field("attempt", "integer", required=True, min=0, max=rules.INT32_MAX - 1),
)


def process_asynchronous_response(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    """An async fulfilment result, by scanCode + codeType (+ profileId for a shared type) and
    the 0-based attempt; brainCloud's `redemptionCodeId` is taken too."""
    twin = [f for f in TWINS["processAsyncResponse"].body or () if f.name != "attempt"]
    b = _known((*_ASYNC_FIELDS, *twin), data)
    record_id = b.get("redemptionCodeId") or _redemption_id(b)
    record = services.process_async_response(
        actor=ctx.actor,
        redemption_id=record_id,
        attempt=b["attempt"] + 1,
        async_response=b["asyncResponse"],
    )
    return wire_record_of(record, app_id=ctx.app_id)


def _redemption_id(b: dict[str, Any]) -> str:
    ct = selectors.code_type_get(b["codeType"])
    if ct.is_shared:
        if ct.canonical_scan_code != codes.canonical_or_none(b["scanCode"]):
            raise exc.CodeNotFoundError()
        if not b.get("profileId"):
            raise exc.invalid_fields({"profileId": "is required for a shared code type"})
        shared = shared_redemption_of(ct, b["profileId"])
        if shared is None:
            raise exc.CodeNotFoundError("This profile has no redemption of the shared code.")
        return str(shared.pk)
    code = selectors.code_lookup(b["scanCode"])
    if code.code_type_id != ct.pk:
        raise exc.CodeTypeMismatchError()
    return str(code.pk)


def code_type_wire(ct: CodeType, counts: dict[str, int]) -> dict[str, Any]:
    """A code type in brainCloud's shape: times as epoch milliseconds, plus `gameId`."""
    out = code_type_record(ct, counts)
    for name, value in (
        ("validStart", ct.valid_start),
        ("validEnd", ct.valid_end),
        ("createdAt", ct.created_at),
        ("updatedAt", ct.updated_at),
    ):
        out[name] = epoch_ms(value)
    return out


# Epoch milliseconds up to the year 9999.
EPOCH_MS_MAX = 253_402_300_799_999
_MULTI_OPTIONS = (
    NEW_SCAN_CODE,
    Field("validStart", "integer", nullable=True, min=0, max=EPOCH_MS_MAX),
    Field("validEnd", "integer", nullable=True, min=0, max=EPOCH_MS_MAX),
    *(
        f
        for f in CODE_TYPE_SETTINGS
        if f.name in {"description", "maxRedemptions", "customCodeInfo"}
    ),
    Field("isDisabled", "boolean", nullable=True),
)


def sys_add_multi_use_code_type(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    """Create a shared code type from brainCloud's {codeType, jsonOptions}. Fulfilment scripts
    (redemptionCodeScript*, async, maxRetries, timeout) have no meaning here: a webhook is
    set on the type through the portal or the JSON API."""
    b = _known((CODE_TYPE, Field("jsonOptions", "object", required=True)), data)
    options = _known(_MULTI_OPTIONS, b["jsonOptions"])
    ct = services.code_type_create(
        actor=ctx.actor,
        name=b["codeType"],
        use_type=UseType.MULTI,
        description=options.get("description") or "",
        scan_code=options["scanCode"],
        valid_start=_from_ms(options.get("validStart")),
        valid_end=_from_ms(options.get("validEnd")),
        max_redemptions=options.get("maxRedemptions"),
        custom_code_info=options.get("customCodeInfo"),
        is_disabled=bool(options.get("isDisabled")),
    )
    return code_type_wire(ct, selectors.state_counts(ct))


def _from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


# --- code type pages, in brainCloud's paging context -----------------------------------------
#
# brainCloud pages by number; the code type list pages by key (SPEC §13). The context handed
# back (signed, so opaque and tamper-proof) keeps the filters, the page size, the page shown
# and the key cursor where each page seen so far starts, so an offset from it walks by key.

_PAGINATION = (
    Field(
        "rowsPerPage",
        "integer",
        required=True,
        min=rules.PAGE_LIMIT_MIN,
        max=rules.PAGE_LIMIT_MAX,
    ),
    Field("pageNumber", "integer", required=True, min=1, max=rules.INT32_MAX),
)
_CONTEXT = (
    Field("pagination", "object", required=True, inner=_PAGINATION),
    Field("searchCriteria", "object", nullable=True),
    Field("sortCriteria", "object", nullable=True),
)
SEARCH_KEYS = ("codeUseType", "isDisabled", "codeType")
_SORTS: tuple[dict[str, int], ...] = ({}, {"codeType": 1}, {"name": 1})


@dataclass(frozen=True)
class _Filters:
    search: str | None
    use_type: str | None
    disabled: bool | None

    def kwargs(self) -> dict[str, Any]:
        return {"search": self.search, "use_type": self.use_type, "disabled": self.disabled}


def _filters(criteria: dict[str, Any]) -> _Filters:
    """The list filters brainCloud's searchCriteria stand for; others are refused (400)."""
    unknown = sorted(set(criteria) - set(SEARCH_KEYS))
    if unknown:
        raise exc.invalid_fields(
            {
                f"searchCriteria.{k}": f"not supported (supported: {', '.join(SEARCH_KEYS)})"
                for k in unknown
            }
        )
    use_type = criteria.get("codeUseType")
    if use_type is not None and use_type not in UseType.values:
        raise exc.invalid_fields({"searchCriteria.codeUseType": "must be SINGLE or MULTI"})
    disabled = criteria.get("isDisabled")
    if isinstance(disabled, dict) and set(disabled) == {"$ne"}:
        disabled = None if not isinstance(disabled["$ne"], bool) else not disabled["$ne"]
    if disabled is not None and not isinstance(disabled, bool):
        raise exc.invalid_fields(
            {"searchCriteria.isDisabled": 'must be true, false or {"$ne": true|false}'}
        )
    search = criteria.get("codeType")
    if isinstance(search, dict) and set(search) == {"$regex"}:
        search = search["$regex"]
    if search is not None and not rules.is_text_of(search, 1, rules.SEARCH_MAX):
        raise exc.invalid_fields(
            {
                "searchCriteria.codeType": 'must be text (or {"$regex": text}) matched anywhere '
                "in the name or description"
            }
        )
    return _Filters(search=search, use_type=use_type, disabled=disabled)


def _page_answer(
    *, criteria: dict[str, Any], rows: int, page: int, starts: list[str | None]
) -> dict[str, Any]:
    filters = _filters(criteria)
    while len(starts) < page:
        walked = selectors.code_types_page(**filters.kwargs(), cursor=starts[-1], limit=rows)
        if walked.next_cursor is None:
            break
        starts.append(walked.next_cursor)
    items: list[dict[str, Any]] = []
    more_after = False
    if len(starts) >= page:
        shown = selectors.code_types_page(**filters.kwargs(), cursor=starts[page - 1], limit=rows)
        items = [code_type_wire(r["code_type"], r["counts"]) for r in shown.rows]
        more_after = shown.next_cursor is not None
        if more_after and len(starts) == page:
            starts.append(shown.next_cursor)
    context = {
        "searchCriteria": criteria,
        "pagination": {"rowsPerPage": rows, "pageNumber": page},
        "starts": starts,
    }
    return {
        "_serverTime": epoch_ms(timezone.now()),
        "context": signing.dumps(context, salt=PAGE_CONTEXT_SALT, compress=True),
        "results": {
            "count": code_types_count(**filters.kwargs()),
            "page": page,
            "items": items,
            "moreAfter": more_after,
            "moreBefore": page > 1,
        },
    }


def sys_get_code_type_page(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    """Code types a page at a time, from brainCloud's {context: {pagination, searchCriteria,
    sortCriteria}}; by name only."""
    b = _known((Field("context", "object", required=True),), data)
    context = clean_object(_CONTEXT, b["context"], prefix="context.")
    sort = context.get("sortCriteria") or {}
    if sort not in _SORTS:
        raise exc.invalid_fields(
            {"context.sortCriteria": 'code types sort by name: {"codeType": 1}'}
        )
    pagination = context["pagination"]
    return _page_answer(
        criteria=context.get("searchCriteria") or {},
        rows=pagination["rowsPerPage"],
        page=pagination["pageNumber"],
        starts=[None],
    )


def sys_get_code_type_page_offset(ctx: S2SContext, data: dict[str, Any]) -> dict[str, Any]:
    """The page `pageOffset` pages from the one a context was handed back with."""
    b = _known(
        (
            Field("context", "string", required=True, min=1, max=64 * 1024),
            Field(
                "pageOffset", "integer", required=True, min=-rules.INT32_MAX, max=rules.INT32_MAX
            ),
        ),
        data,
    )
    try:
        context = signing.loads(b["context"], salt=PAGE_CONTEXT_SALT)
    except signing.BadSignature:
        raise exc.invalid_fields({"context": "is not a context this server handed out"}) from None
    pagination = context["pagination"]
    page = pagination["pageNumber"] + b["pageOffset"]
    if page < 1:
        raise exc.invalid_fields({"pageOffset": "leads before the first page"})
    return _page_answer(
        criteria=context["searchCriteria"],
        rows=pagination["rowsPerPage"],
        page=page,
        starts=list(context["starts"]),
    )


# (service, operation) -> (what runs it, the scope of its JSON API twin)
Handler = Callable[[S2SContext, dict[str, Any]], Any]
OPERATIONS: dict[tuple[str, str], tuple[Handler, str | None]] = {
    (SERVICE, "ADD_CODE"): (add_code, TWINS["addCode"].scope),
    (SERVICE, "ACTIVATE_CODE"): (activate_code, TWINS["activateCode"].scope),
    (SERVICE, "INVALIDATE_CODE"): (invalidate_code, TWINS["invalidateCode"].scope),
    (SERVICE, "UPDATE_CUSTOM_INFO"): (update_custom_info, TWINS["updateCodeCustomInfo"].scope),
    (SERVICE, "GENERATE_CODES_INLINE"): (
        generate_codes_inline,
        TWINS["generateCodesInline"].scope,
    ),
    (SERVICE, "GENERATE_CODES"): (generate_codes, TWINS["generateCodesJob"].scope),
    (SERVICE, "PROCESS_ASYNCHRONOUS_RESPONSE"): (
        process_asynchronous_response,
        TWINS["processAsyncResponse"].scope,
    ),
    (SERVICE, "SYS_ADD_MULTI_USE_CODE_TYPE"): (
        sys_add_multi_use_code_type,
        TWINS["createCodeType"].scope,
    ),
    (SERVICE, "SYS_GET_CODE_TYPE_PAGE"): (sys_get_code_type_page, TWINS["listCodeTypes"].scope),
    (SERVICE, "SYS_GET_CODE_TYPE_PAGE_OFFSET"): (
        sys_get_code_type_page_offset,
        TWINS["listCodeTypes"].scope,
    ),
}


def run(ctx: S2SContext, service: str, operation: str, data: dict[str, Any]) -> Any:
    """Run one S2S operation under its twin's scope; answer its `data`."""
    if (service, operation) == HEARTBEAT:
        return None
    found = OPERATIONS.get((service, operation))
    if found is None:
        raise exc.WireUnknownOperationError(f"{service[:64]}/{operation[:64]} is not offered here.")
    handler, scope = found
    if scope is not None:
        keys.server_key_require_scope(ctx.key, scope)
    return handler(ctx, data)
