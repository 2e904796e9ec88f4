"""JSON API handlers (thin) and the endpoint table that urls.py and openapi.py are built from."""

import csv
import io
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase, StreamingHttpResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from redemption import exceptions as exc
from redemption import records, selectors, services
from redemption.actors import Profile
from redemption.api import auth, idempotency
from redemption.api.errors import JSON, error_response, json_response
from redemption.api.validation import (
    CODE_TYPE_PATTERN,
    INT32_MAX,
    URL_PATTERN,
    Field,
    clean_object,
    clean_query,
    parse_json_object,
    text_ok,
)
from redemption.models import UseType
from redemption.records import attempt_record, audit_record, code_record, code_type_record, ts
from redemption.services import bulk
from redemption.services import keys as key_services

CSV = "text/csv"

# --- the endpoint table ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """One documented success response."""

    status: int
    schema: str  # a component schema name
    description: str
    content_type: str = JSON
    headers: tuple[str, ...] = ()  # response headers always present


@dataclass(frozen=True)
class PathParam:
    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass
class Call:
    """One authenticated, validated request as a handler sees it."""

    request: HttpRequest
    identity: auth.Identity
    body: dict[str, Any]
    query: dict[str, Any]
    path: dict[str, str]
    upload: Any = None


@dataclass(frozen=True)
class Operation:
    """One method on one path: auth, input, handler, and what it can answer."""

    method: str
    operation_id: str
    summary: str
    handler: Callable[[Call], HttpResponseBase]
    auth: str
    replies: tuple[Reply, ...]
    errors: tuple[type[exc.RedemptionError], ...] = ()
    body: tuple[Field, ...] | None = None
    csv_body: bool = False
    query: tuple[Field, ...] = ()
    fixed: Mapping[str, str] = field(default_factory=dict)
    atomic: bool = True  # store the idempotent response in the same transaction as the work
    description: str = ""
    tag: str = "server"


@dataclass(frozen=True)
class Endpoint:
    route: str  # Django route below api/v1/; <str:name> segments are the path parameters
    name: str
    operations: tuple[Operation, ...]
    params: tuple[PathParam, ...] = ()

    @property
    def template(self) -> str:
        """The OpenAPI path, e.g. /api/v1/server/codes/{scanCode}."""
        return "/api/v1/" + re.sub(r"<\w+:(\w+)>", r"{\1}", self.route)


# --- input helpers --------------------------------------------------------------------------


def _code_type_name(value: str) -> str:
    """A path's code type name; one that cannot exist is simply not found."""
    if not re.fullmatch(CODE_TYPE_PATTERN, value):
        raise exc.CodeTypeNotFoundError(details={"codeType": value[:64]})
    return value


def _profile_id(value: str) -> str:
    if not 1 <= len(value) <= key_services.PROFILE_ID_MAX or not text_ok(value):
        raise exc.invalid_fields({"profileId": "1-128 characters"})
    return value


def _job_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise exc.JobNotFoundError(details={"jobId": value[:64]}) from None


def _type_filter(query: dict[str, Any]) -> str | None:
    name = query.get("codeType")
    if name is not None:
        selectors.code_type_get(name)  # an unknown filter is an error, not an empty list
    return name


def _job_url(job: Any) -> str:
    return reverse("api:job", kwargs={"jobId": str(job.pk)})


def _code_type_json(ct: Any) -> HttpResponse:
    return json_response(code_type_record(ct, selectors.state_counts(ct)))


# --- handlers -------------------------------------------------------------------------------


def _redeem(call: Call, profile: Profile) -> HttpResponse:
    b = call.body
    result = services.redeem(
        actor=call.identity.actor,
        profile=profile,
        scan_code=b["scanCode"],
        code_type_name=b.get("codeType"),
        custom_redemption_info=b.get("customRedemptionInfo"),
        client_ip=call.identity.client_ip,
    )
    return json_response(code_record(result.record), status=202 if result.in_progress else 200)


def client_redeem(call: Call) -> HttpResponse:
    assert call.identity.profile is not None
    return _redeem(call, call.identity.profile)


def server_redeem(call: Call) -> HttpResponse:
    return _redeem(call, Profile(call.body["profileId"], call.body.get("profileName")))


def _codes_list(profile_id: str, code_type: str | None, *, redeemed_only: bool) -> HttpResponse:
    records = selectors.redeemed_by_profile(
        profile_id, code_type_name=code_type, redeemed_only=redeemed_only
    )
    return json_response({"codes": [code_record(r) for r in records]})


def client_redeemed_codes(call: Call) -> HttpResponse:
    assert call.identity.profile is not None
    code_type = _type_filter(call.query)
    return _codes_list(call.identity.profile.id, code_type, redeemed_only=True)


def server_profile_codes(call: Call) -> HttpResponse:
    profile_id = _profile_id(call.path["profileId"])
    code_type = _type_filter(call.query)
    return _codes_list(profile_id, code_type, redeemed_only=False)


def user_token_create(call: Call) -> HttpResponse:
    b = call.body
    minted = key_services.user_token_mint(
        actor=call.identity.actor,
        profile_id=b["profileId"],
        profile_name=b.get("profileName"),
        ttl_seconds=b.get("ttlSeconds", key_services.TTL_DEFAULT),
    )
    return json_response(
        {"token": minted.token, "profileId": minted.profile_id, "expiresAt": ts(minted.expires_at)},
        status=201,
    )


def code_types_list(call: Call) -> HttpResponse:
    rows = selectors.inventory_summary()
    return json_response(
        {"codeTypes": [code_type_record(r["code_type"], r["counts"]) for r in rows]}
    )


CODE_TYPE_KWARGS = {
    "description": "description",
    "scanCode": "scan_code",
    "validStart": "valid_start",
    "validEnd": "valid_end",
    "maxRedemptions": "max_redemptions",
    "customCodeInfo": "custom_code_info",
    "isDisabled": "is_disabled",
    "fulfillment": "fulfillment",
}


def code_type_create(call: Call) -> HttpResponse:
    b = call.body
    kwargs = {CODE_TYPE_KWARGS[k]: v for k, v in b.items() if k in CODE_TYPE_KWARGS}
    if kwargs.get("description") is None:
        kwargs.pop("description", None)
    if kwargs.get("is_disabled") is None:
        kwargs.pop("is_disabled", None)
    ct = services.code_type_create(
        actor=call.identity.actor,
        name=b["codeType"],
        use_type=b.get("codeUseType") or UseType.SINGLE,
        **kwargs,
    )
    response = _code_type_json(ct)
    response.status_code = 201
    return response


def code_type_get(call: Call) -> HttpResponse:
    return _code_type_json(selectors.code_type_get(_code_type_name(call.path["codeType"])))


def code_type_update(call: Call) -> HttpResponse:
    b = call.body
    name = _code_type_name(call.path["codeType"])
    ct = services.code_type_update(
        actor=call.identity.actor,
        name=name,
        expected_version=b.get("version"),
        **{CODE_TYPE_KWARGS[k]: v for k, v in b.items() if k in CODE_TYPE_KWARGS},
    )
    return _code_type_json(ct)


def code_add(call: Call) -> HttpResponse:
    b = call.body
    code = services.code_add(
        actor=call.identity.actor,
        code_type_name=b["codeType"],
        scan_code=b["scanCode"],
        state=b.get("codeState"),
        custom_code_info=b.get("customCodeInfo"),
    )
    return json_response(code_record(code), status=201)


def code_get(call: Call) -> HttpResponse:
    code = selectors.code_lookup(call.path["scanCode"])
    record = code_record(code)
    record["attempts"] = [attempt_record(a) for a in selectors.code_attempts(code)]
    record["history"] = [audit_record(e) for e in selectors.code_history(code)]
    return json_response(record)


def code_activate(call: Call) -> HttpResponse:
    code = services.code_activate(
        actor=call.identity.actor,
        scan_code=call.path["scanCode"],
        code_type_name=call.body["codeType"],
        custom_code_info=call.body.get("customCodeInfo"),
    )
    return json_response(code_record(code))


def code_invalidate(call: Call) -> HttpResponse:
    code = services.code_invalidate(
        actor=call.identity.actor,
        scan_code=call.path["scanCode"],
        code_type_name=call.body["codeType"],
        reason=call.body.get("invalidationReason"),
    )
    return json_response(code_record(code))


def code_custom_info(call: Call) -> HttpResponse:
    code = services.code_update_custom_info(
        actor=call.identity.actor,
        scan_code=call.path["scanCode"],
        code_type_name=call.body["codeType"],
        version=call.body["version"],
        custom_code_info=call.body["customCodeInfo"],
    )
    return json_response(code_record(code))


def _generate_kwargs(call: Call) -> dict[str, Any]:
    b = call.body
    return {
        "actor": call.identity.actor,
        "code_type_name": _code_type_name(call.path["codeType"]),
        "quantity": b["quantity"],
        "state": b.get("codeState"),
        "custom_code_info": b.get("customCodeInfo"),
        "prefix": b.get("prefix"),
        "algorithm": b.get("algorithmName"),
        "algorithm_details": b.get("algorithmDetails"),
    }


def codes_generate_inline(call: Call) -> HttpResponse:
    batch, scan_codes = bulk.codes_generate_inline(**_generate_kwargs(call))
    return json_response({"batchId": str(batch.pk), "generatedScanCodes": scan_codes}, status=201)


def _job_accepted(job: Any) -> HttpResponse:
    return json_response(records.job_record(job), status=202, headers={"Location": _job_url(job)})


def codes_generate_job(call: Call) -> HttpResponse:
    return _job_accepted(bulk.job_generate_start(**_generate_kwargs(call)))


def codes_import_job(call: Call) -> HttpResponse:
    name = _code_type_name(call.path["codeType"])
    return _job_accepted(
        bulk.job_import_start(actor=call.identity.actor, code_type_name=name, upload=call.upload)
    )


def job_get(call: Call) -> HttpResponse:
    return json_response(records.job_record(bulk.job_get(_job_id(call.path["jobId"]))))


class _Line:
    """A write-only file that hands back the last line the csv writer produced."""

    def write(self, value: str) -> str:
        return value


def job_result(call: Call) -> HttpResponseBase:
    job = bulk.job_get(_job_id(call.path["jobId"]))
    rows = bulk.job_result_rows(job)  # raises before streaming starts when there is no result
    writer = csv.writer(_Line())

    def lines() -> Iterator[bytes]:
        for row in rows:
            yield writer.writerow(row).encode()

    response = StreamingHttpResponse(lines(), content_type=f"{CSV}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}.csv"'
    return response


def async_response(call: Call) -> HttpResponse:
    record = services.process_async_response(
        actor=call.identity.actor,
        redemption_id=call.path["redemptionCodeId"],
        attempt=call.body["attempt"],
        async_response=call.body["asyncResponse"],
    )
    return json_response(code_record(record))


def openapi_document(call: Call) -> HttpResponse:
    from redemption.api.openapi import document_bytes

    return HttpResponse(document_bytes(), content_type=JSON)


# --- fields ---------------------------------------------------------------------------------

SCAN_CODE = Field(
    "scanCode",
    "string",
    required=True,
    description="Any spelling: case, spaces and hyphens do not matter; O reads as 0, I and L as 1.",
)
NEW_SCAN_CODE = Field(
    "scanCode", "string", required=True, max=80, description="4-64 letters and digits."
)
CODE_TYPE = Field("codeType", "string", required=True, pattern=CODE_TYPE_PATTERN)
CODE_TYPE_OPTIONAL = Field(
    "codeType",
    "string",
    nullable=True,
    pattern=CODE_TYPE_PATTERN,
    description="When given, the code must belong to this code type.",
)
CUSTOM_CODE_INFO = Field(
    "customCodeInfo", "object", nullable=True, description="Any JSON object up to 16 KB."
)
CUSTOM_REDEMPTION_INFO = Field(
    "customRedemptionInfo", "object", nullable=True, description="Any JSON object up to 16 KB."
)
PROFILE_ID = Field("profileId", "string", required=True, min=1, max=128)
PROFILE_NAME = Field("profileName", "string", nullable=True, max=200)
INITIAL_STATE = Field(
    "codeState", "enum", nullable=True, choices=("Inactive", "Available"), default="Inactive"
)
REDEEM_FIELDS = (SCAN_CODE, CODE_TYPE_OPTIONAL, CUSTOM_REDEMPTION_INFO)
FULFILLMENT = Field(
    "fulfillment",
    "object",
    nullable=True,
    description="Webhook that fulfils each redemption (SPEC §6); null for none.",
    inner=(
        Field("url", "string", required=True, max=500, pattern=URL_PATTERN),
        Field("async", "boolean", default=False),
        Field("maxRetries", "integer", min=0, max=10, default=0),
        Field("timeoutSeconds", "integer", min=1, max=86_400, default=30),
    ),
)
CODE_TYPE_SETTINGS = (
    Field("description", "string", nullable=True, max=2000),
    Field("validStart", "datetime", nullable=True),
    Field("validEnd", "datetime", nullable=True),
    Field(
        "maxRedemptions",
        "integer",
        nullable=True,
        min=1,
        max=INT32_MAX,
        description="Shared types only; null for unlimited.",
    ),
    CUSTOM_CODE_INFO,
    Field("isDisabled", "boolean"),
    FULFILLMENT,
)
CODE_TYPE_CREATE_FIELDS = (
    CODE_TYPE,
    Field("codeUseType", "enum", choices=("SINGLE", "MULTI"), default="SINGLE"),
    Field(
        "scanCode",
        "string",
        nullable=True,
        max=80,
        description="The public scan code of a shared (MULTI) type; null for personal types.",
    ),
    *CODE_TYPE_SETTINGS,
)
CODE_TYPE_UPDATE_FIELDS = (
    Field("scanCode", "string", max=80, description="Shared (MULTI) types only."),
    *CODE_TYPE_SETTINGS,
    Field(
        "version",
        "integer",
        min=1,
        max=INT32_MAX,
        description="When given, the update only applies if the code type still has it.",
    ),
)


def _generate_fields(max_quantity: int) -> tuple[Field, ...]:
    return (
        Field("quantity", "integer", required=True, min=1, max=max_quantity),
        INITIAL_STATE,
        CUSTOM_CODE_INFO,
        Field("prefix", "string", nullable=True, max=64),
        Field(
            "algorithmName",
            "enum",
            nullable=True,
            choices=("Crockford", "FiveByFive", "StructuredGuid"),
            default="Crockford",
        ),
        Field(
            "algorithmDetails",
            "object",
            nullable=True,
            inner=(
                Field("length", "integer", min=8, max=32, default=16),
                Field("includeCheck", "boolean", default=False),
            ),
        ),
    )


ASYNC_REPLY_DOC = (
    Field("success", "boolean", required=True),
    Field("complete", "boolean"),
    Field("customRedemptionInfo", "object", nullable=True),
    Field("errorCode", "string", nullable=True),
    Field("errorMsg", "string", nullable=True),
)

# --- the table ------------------------------------------------------------------------------

E = exc
FIND_ERRORS = (
    E.InvalidScanCodeError,
    E.CodeNotFoundError,
    E.CodeTypeNotFoundError,
    E.CodeTypeMismatchError,
)
REDEEM_ERRORS = (
    *FIND_ERRORS,
    E.CodeTypeDisabledError,
    E.NotYetValidError,
    E.ExpiredError,
    E.CodeNotActiveError,
    E.CodeInvalidatedError,
    E.RedeemedBySelfError,
    E.RedeemedByOtherError,
    E.RedemptionInProgressError,
    E.RedemptionFailedError,
    E.RedemptionFailedMaxRetriesError,
    E.AttemptedByMismatchError,
    E.MaxRedemptionsReachedError,
    E.ScriptFailureError,
    E.MaxFailedExceededError,
)
GENERATE_ERRORS = (
    E.CodeTypeNotFoundError,
    E.TypeMustBeSingleUseError,
    E.CodeTypeDisabledError,
    E.InsufficientCodeSpaceError,
)
CODE_RECORD = Reply(200, "CodeRecord", "The code record.")
JOB_ACCEPTED = Reply(202, "Job", "The job was queued; poll Location.", headers=("Location",))
CODE_TYPE_PARAM = PathParam("codeType", "Code type name.")
SCAN_CODE_PARAM = PathParam("scanCode", "Any spelling of the scan code.")
JOB_PARAM = PathParam("jobId", "Job id.", {"type": "string", "format": "uuid"})
S, C, P = auth.SERVER, auth.CLIENT, auth.PUBLIC

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "openapi.json",
        "openapi",
        (
            Operation(
                "GET",
                "getOpenApi",
                "This OpenAPI 3.1 document",
                openapi_document,
                P,
                (Reply(200, "OpenApiDocument", "The document."),),
                tag="meta",
            ),
        ),
    ),
    Endpoint(
        "client/redeem",
        "client_redeem",
        (
            Operation(
                "POST",
                "clientRedeem",
                "Redeem a code for the token's profile",
                client_redeem,
                C,
                (
                    Reply(200, "CodeRecord", "Redeemed."),
                    Reply(202, "CodeRecord", "Fulfilment is still in progress (async webhook)."),
                ),
                REDEEM_ERRORS,
                body=REDEEM_FIELDS,
                atomic=False,
                tag="client",
                description="Failed redeems are counted per profile and per client IP; "
                "past the limit the answer is 429 with Retry-After. "
                "REDEMPTION_CODE_REDEEMED_BY_SELF carries the record in details.record.",
            ),
        ),
    ),
    Endpoint(
        "client/redeemed-codes",
        "client_redeemed_codes",
        (
            Operation(
                "GET",
                "clientRedeemedCodes",
                "Codes the token's profile redeemed, newest first",
                client_redeemed_codes,
                C,
                (Reply(200, "CodeList", "Redeemed codes only."),),
                (E.CodeTypeNotFoundError,),
                query=(CODE_TYPE_OPTIONAL,),
                tag="client",
            ),
        ),
    ),
    Endpoint(
        "server/user-tokens",
        "user_tokens",
        (
            Operation(
                "POST",
                "createUserToken",
                "Mint a user token for one profile",
                user_token_create,
                S,
                (Reply(201, "UserToken", "The token; send it as 'Authorization: Bearer'."),),
                body=(
                    PROFILE_ID,
                    PROFILE_NAME,
                    Field("ttlSeconds", "integer", min=60, max=86_400, default=3600),
                ),
            ),
        ),
    ),
    Endpoint(
        "server/code-types",
        "code_types",
        (
            Operation(
                "GET",
                "listCodeTypes",
                "Every code type with its per-state counts",
                code_types_list,
                S,
                (Reply(200, "CodeTypeList", "All code types by name."),),
            ),
            Operation(
                "POST",
                "createCodeType",
                "Create a code type",
                code_type_create,
                S,
                (Reply(201, "CodeType", "Created."),),
                (E.InvalidScanCodeError, E.CodeTypeDuplicateError, E.CodeDuplicateError),
                body=CODE_TYPE_CREATE_FIELDS,
            ),
        ),
    ),
    Endpoint(
        "server/code-types/<str:codeType>",
        "code_type",
        (
            Operation(
                "GET",
                "getCodeType",
                "One code type",
                code_type_get,
                S,
                (Reply(200, "CodeType", "The code type."),),
                (E.CodeTypeNotFoundError,),
            ),
            Operation(
                "PATCH",
                "updateCodeType",
                "Change some settings of a code type",
                code_type_update,
                S,
                (Reply(200, "CodeType", "Updated."),),
                (
                    E.CodeTypeNotFoundError,
                    E.InvalidScanCodeError,
                    E.VersionMismatchError,
                    E.CodeDuplicateError,
                ),
                body=CODE_TYPE_UPDATE_FIELDS,
                fixed={"codeType": "cannot be changed", "codeUseType": "cannot be changed"},
            ),
        ),
        (CODE_TYPE_PARAM,),
    ),
    Endpoint(
        "server/code-types/<str:codeType>/generate-inline",
        "generate_inline",
        (
            Operation(
                "POST",
                "generateCodesInline",
                "Generate up to 1,000 codes and return them",
                codes_generate_inline,
                S,
                (Reply(201, "GeneratedCodes", "One batch of new codes."),),
                GENERATE_ERRORS,
                body=_generate_fields(1000),
            ),
        ),
        (CODE_TYPE_PARAM,),
    ),
    Endpoint(
        "server/code-types/<str:codeType>/generate",
        "generate",
        (
            Operation(
                "POST",
                "generateCodesJob",
                "Generate up to 10,000,000 codes in a background job",
                codes_generate_job,
                S,
                (JOB_ACCEPTED,),
                GENERATE_ERRORS,
                body=_generate_fields(10_000_000),
            ),
        ),
        (CODE_TYPE_PARAM,),
    ),
    Endpoint(
        "server/code-types/<str:codeType>/import",
        "import",
        (
            Operation(
                "POST",
                "importCodesJob",
                "Import codes from CSV (scanCode[,codeState][,customCodeInfo]) in a job",
                codes_import_job,
                S,
                (JOB_ACCEPTED,),
                (E.CodeTypeNotFoundError, E.TypeMustBeSingleUseError, E.CodeTypeDisabledError),
                csv_body=True,
                atomic=False,
                description="Body: text/csv, up to 200 MiB, streamed. Bad lines do not fail "
                "the job; they are listed in its errors.",
            ),
        ),
        (CODE_TYPE_PARAM,),
    ),
    Endpoint(
        "server/codes",
        "codes",
        (
            Operation(
                "POST",
                "addCode",
                "Add one personal code",
                code_add,
                S,
                (Reply(201, "CodeRecord", "Added."),),
                (
                    E.InvalidScanCodeError,
                    E.CodeTypeNotFoundError,
                    E.TypeMustBeSingleUseError,
                    E.CodeDuplicateError,
                ),
                body=(NEW_SCAN_CODE, CODE_TYPE, INITIAL_STATE, CUSTOM_CODE_INFO),
            ),
        ),
    ),
    Endpoint(
        "server/codes/<str:scanCode>",
        "code",
        (
            Operation(
                "GET",
                "getCode",
                "Look up one code with its attempts and history",
                code_get,
                S,
                (Reply(200, "CodeLookup", "The code record with attempts and history."),),
                (E.InvalidScanCodeError, E.CodeNotFoundError),
            ),
        ),
        (SCAN_CODE_PARAM,),
    ),
    Endpoint(
        "server/codes/<str:scanCode>/activate",
        "code_activate",
        (
            Operation(
                "POST",
                "activateCode",
                "Make an Inactive code Available",
                code_activate,
                S,
                (CODE_RECORD,),
                (
                    *FIND_ERRORS,
                    E.CodeActiveError,
                    E.CodeInvalidatedError,
                    E.CodeRedeemedError,
                    E.RedemptionInProgressError,
                    E.RedemptionFailedError,
                ),
                body=(CODE_TYPE, CUSTOM_CODE_INFO),
            ),
        ),
        (SCAN_CODE_PARAM,),
    ),
    Endpoint(
        "server/codes/<str:scanCode>/invalidate",
        "code_invalidate",
        (
            Operation(
                "POST",
                "invalidateCode",
                "Invalidate a code (from Inactive, Available or Failed)",
                code_invalidate,
                S,
                (CODE_RECORD,),
                (
                    *FIND_ERRORS,
                    E.CodeInvalidatedError,
                    E.CodeRedeemedError,
                    E.RedemptionInProgressError,
                ),
                body=(CODE_TYPE, Field("invalidationReason", "string", nullable=True, max=1000)),
            ),
        ),
        (SCAN_CODE_PARAM,),
    ),
    Endpoint(
        "server/codes/<str:scanCode>/custom-info",
        "code_custom_info",
        (
            Operation(
                "PUT",
                "updateCodeCustomInfo",
                "Replace a code's customCodeInfo if its version is current",
                code_custom_info,
                S,
                (CODE_RECORD,),
                (*FIND_ERRORS, E.VersionMismatchError, E.CodeTypeDisabledError),
                body=(
                    CODE_TYPE,
                    Field("version", "integer", required=True, min=1, max=INT32_MAX),
                    Field("customCodeInfo", "object", required=True),
                ),
            ),
        ),
        (SCAN_CODE_PARAM,),
    ),
    Endpoint(
        "server/jobs/<str:jobId>",
        "job",
        (
            Operation(
                "GET",
                "getJob",
                "A background job and its progress",
                job_get,
                S,
                (Reply(200, "Job", "The job."),),
                (exc.JobNotFoundError,),
            ),
        ),
        (JOB_PARAM,),
    ),
    Endpoint(
        "server/jobs/<str:jobId>/result.csv",
        "job_result",
        (
            Operation(
                "GET",
                "getJobResult",
                "The codes a generate job produced, as CSV",
                job_result,
                S,
                (Reply(200, "CsvText", "One scan code per line.", content_type=CSV),),
                (exc.JobNotFoundError,),
            ),
        ),
        (JOB_PARAM,),
    ),
    Endpoint(
        "server/redeem",
        "server_redeem",
        (
            Operation(
                "POST",
                "serverRedeem",
                "Redeem a code on behalf of a profile",
                server_redeem,
                S,
                (
                    Reply(200, "CodeRecord", "Redeemed."),
                    Reply(202, "CodeRecord", "Fulfilment is still in progress (async webhook)."),
                ),
                REDEEM_ERRORS,
                body=(PROFILE_ID, PROFILE_NAME, *REDEEM_FIELDS),
                atomic=False,
                description="As the client redeem; failed redeems count per profile only.",
            ),
        ),
    ),
    Endpoint(
        "server/profiles/<str:profileId>/redeemed-codes",
        "profile_codes",
        (
            Operation(
                "GET",
                "profileRedeemedCodes",
                "Every code a profile redeemed or attempted, newest first",
                server_profile_codes,
                S,
                (Reply(200, "CodeList", "Redeemed, in-progress and failed records."),),
                (E.CodeTypeNotFoundError,),
                query=(CODE_TYPE_OPTIONAL,),
            ),
        ),
        (PathParam("profileId", "The profile id (1-128 characters)."),),
    ),
    Endpoint(
        "server/redemptions/<str:redemptionCodeId>/async-response",
        "async_response",
        (
            Operation(
                "POST",
                "processAsyncResponse",
                "Report the outcome of an asynchronous fulfilment attempt",
                async_response,
                S,
                (CODE_RECORD,),
                (
                    E.CodeByIdNotFoundError,
                    E.TypeNotAsyncError,
                    E.AsyncBadResponseError,
                    E.AsyncTimeoutError,
                    E.NotInProgressError,
                    E.AttemptMismatchError,
                ),
                body=(
                    Field("attempt", "integer", required=True, min=1, max=INT32_MAX),
                    Field(
                        "asyncResponse",
                        "object",
                        required=True,
                        inner_doc=ASYNC_REPLY_DOC,
                    ),
                ),
            ),
        ),
        (PathParam("redemptionCodeId", "redemptionCodeId of the record.", {"type": "string"}),),
    ),
)


# --- dispatch -------------------------------------------------------------------------------


def _content_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def _require_content_type(request: HttpRequest, expected: str) -> None:
    content_type = (request.content_type or "").lower()
    charset = (request.content_params or {}).get("charset", "utf-8").lower()
    if content_type != expected or charset.replace("_", "-") not in {"utf-8", "utf8"}:
        raise exc.invalid_fields({"Content-Type": f"must be {expected} (UTF-8)"})


def _handle(request: HttpRequest, op: Operation, path: dict[str, str]) -> HttpResponseBase:
    identity = auth.authenticate(request, op.auth)
    query = clean_query(op.query, request.GET)
    body: dict[str, Any] = {}
    raw = b""
    upload = None
    if op.csv_body:
        if _content_length(request) > settings.IMPORT_MAX_BODY_BYTES:
            raise exc.RequestTooLargeError(details={"limitBytes": settings.IMPORT_MAX_BODY_BYTES})
        _require_content_type(request, CSV)
        hashing = idempotency.HashingReader(
            request,
            method=request.method or "POST",
            path=request.get_full_path(),
            limit=settings.IMPORT_MAX_BODY_BYTES,
        )
        upload = io.BufferedReader(hashing, buffer_size=1 << 16)
    elif op.body is not None:
        if _content_length(request) > settings.API_MAX_BODY_BYTES:
            raise exc.RequestTooLargeError(details={"limitBytes": settings.API_MAX_BODY_BYTES})
        _require_content_type(request, JSON)
        raw = request.body
        body = clean_object(op.body, parse_json_object(raw), fixed=op.fixed)
    call = Call(request, identity, body, query, path, upload)
    key = request.headers.get(idempotency.HEADER) if request.method == "POST" else None
    if key is None:
        return op.handler(call)
    key = idempotency.check_key(key)

    def work() -> HttpResponse:
        try:
            return cast(HttpResponse, op.handler(call))  # POST answers are never streamed
        except exc.RedemptionError as error:
            return error_response(error)

    if op.csv_body:
        return idempotency.run(
            credential=identity.scope,
            key=key,
            work=work,
            hash_now=None,
            hash_later=hashing.hexdigest,
            atomic=False,
        )
    return idempotency.run(
        credential=identity.scope,
        key=key,
        work=work,
        hash_now=idempotency.fingerprint(request.method or "POST", request.get_full_path(), raw),
        atomic=op.atomic,
    )


def endpoint_view(endpoint: Endpoint) -> Callable[..., HttpResponseBase]:
    """The one Django view of an endpoint: method dispatch, then the shared request pipeline."""
    by_method = {op.method: op for op in endpoint.operations}
    allow = ", ".join(by_method)

    @csrf_exempt
    def view(request: HttpRequest, **path: str) -> HttpResponseBase:
        op = by_method.get(request.method or "")
        if op is None:
            response = error_response(
                exc.MethodNotAllowedError(details={"allowed": list(by_method)})
            )
            response["Allow"] = allow
            return response
        try:
            return _handle(request, op, path)
        except Exception as error:
            return error_response(error)

    view.__name__ = f"api_{endpoint.name}"
    return view


@csrf_exempt
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Any /api/v1/ path that names no endpoint."""
    return error_response(exc.PathNotFoundError())
