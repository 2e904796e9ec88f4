"""Endpoints the client app's backend calls, with a server key."""

from redemption import exceptions as exc
from redemption import rules
from redemption.api import handlers
from redemption.api.auth import SERVER
from redemption.api.endpoints.shared import (
    ACTIVATE_CUSTOM_CODE_INFO,
    ASYNC_REPLY_DOC,
    CODE_RECORD,
    CODE_TYPE,
    CODE_TYPE_CREATE_FIELDS,
    CODE_TYPE_CREATE_RULES,
    CODE_TYPE_FILTERS,
    CODE_TYPE_OPTIONAL,
    CODE_TYPE_PARAM,
    CODE_TYPE_UPDATE_FIELDS,
    CUSTOM_CODE_INFO,
    FIND_ERRORS,
    GENERATE_ERRORS,
    GENERATE_RULES,
    INITIAL_STATE,
    JOB_ACCEPTED,
    JOB_PARAM,
    NEW_SCAN_CODE,
    PAGE_FIELDS,
    PROFILE_ID,
    PROFILE_NAME,
    REDEEM_ERRORS,
    REDEEM_FIELDS,
    SCAN_CODE_PARAM,
    generate_fields,
)
from redemption.api.spec import CSV, Endpoint, Operation, PathParam, Reply
from redemption.api.validation import Field

SERVER_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        route="server/user-tokens",
        name="user_tokens",
        operations=(
            Operation(
                method="POST",
                operation_id="createUserToken",
                scope=rules.SCOPE_USER_TOKENS,
                summary="Mint a user token for one profile",
                handler=handlers.user_token_create,
                auth=SERVER,
                replies=(
                    Reply(
                        status=201,
                        schema="UserToken",
                        description="The token; send it as 'Authorization: Bearer'.",
                    ),
                ),
                body=(
                    PROFILE_ID,
                    PROFILE_NAME,
                    Field(
                        "ttlSeconds",
                        "integer",
                        min=rules.USER_TOKEN_TTL_MIN,
                        max=rules.USER_TOKEN_TTL_MAX,
                        default=rules.USER_TOKEN_TTL_DEFAULT,
                    ),
                ),
            ),
        ),
    ),
    Endpoint(
        route="server/code-types",
        name="code_types",
        operations=(
            Operation(
                method="GET",
                operation_id="listCodeTypes",
                scope=rules.SCOPE_CODES_READ,
                summary="Code types with their per-state counts, by name, a page at a time",
                handler=handlers.code_types_list,
                auth=SERVER,
                replies=(
                    Reply(
                        status=200,
                        schema="CodeTypeList",
                        description="One page of code types by name; nextCursor is null on "
                        "the last page.",
                    ),
                ),
                query=(*CODE_TYPE_FILTERS, *PAGE_FIELDS),
            ),
            Operation(
                method="POST",
                operation_id="createCodeType",
                scope=rules.SCOPE_CODE_TYPES_WRITE,
                summary="Create a code type",
                handler=handlers.code_type_create,
                auth=SERVER,
                replies=(Reply(status=201, schema="CodeType", description="Created."),),
                errors=(
                    exc.InvalidScanCodeError,
                    exc.CodeTypeDuplicateError,
                    exc.CodeDuplicateError,
                    exc.FulfillmentUrlForbiddenError,
                    exc.ValidityWindowError,
                ),
                body=CODE_TYPE_CREATE_FIELDS,
                body_rules=CODE_TYPE_CREATE_RULES,
            ),
        ),
    ),
    Endpoint(
        route="server/code-types/<str:codeType>",
        name="code_type",
        operations=(
            Operation(
                method="GET",
                operation_id="getCodeType",
                scope=rules.SCOPE_CODES_READ,
                summary="One code type",
                handler=handlers.code_type_get,
                auth=SERVER,
                replies=(Reply(status=200, schema="CodeType", description="The code type."),),
                errors=(exc.CodeTypeNotFoundError,),
            ),
            Operation(
                method="PATCH",
                operation_id="updateCodeType",
                scope=rules.SCOPE_CODE_TYPES_WRITE,
                summary="Change some settings of a code type",
                handler=handlers.code_type_update,
                auth=SERVER,
                replies=(Reply(status=200, schema="CodeType", description="Updated."),),
                errors=(
                    exc.CodeTypeNotFoundError,
                    exc.InvalidScanCodeError,
                    exc.VersionMismatchError,
                    exc.CodeDuplicateError,
                    exc.FulfillmentUrlForbiddenError,
                    exc.ValidityWindowError,
                    exc.CodeUseTypeError,
                    exc.MaxRedemptionsReachedError,
                ),
                body=CODE_TYPE_UPDATE_FIELDS,
                fixed={"codeType": "cannot be changed", "codeUseType": "cannot be changed"},
            ),
            Operation(
                method="DELETE",
                operation_id="deleteCodeType",
                scope=rules.SCOPE_CODE_TYPES_WRITE,
                summary="Delete a code type that has no codes and no shared redemptions",
                handler=handlers.code_type_delete,
                auth=SERVER,
                replies=(Reply(status=200, schema="CodeTypeDeleted", description="It is gone."),),
                errors=(exc.CodeTypeNotFoundError, exc.CodeTypeNotEmptyError),
                description="A type with codes or shared redemptions is refused (409 "
                "REDEMPTION_CODE_TYPE_NOT_EMPTY): archive it instead.",
            ),
        ),
        params=(CODE_TYPE_PARAM,),
    ),
    *(
        Endpoint(
            route=f"server/code-types/<str:codeType>/{verb}",
            name=f"code_type_{verb}",
            operations=(
                Operation(
                    method="POST",
                    operation_id=f"{verb}CodeType",
                    scope=rules.SCOPE_CODE_TYPES_WRITE,
                    summary=summary,
                    handler=handler,
                    auth=SERVER,
                    replies=(Reply(status=200, schema="CodeType", description="The code type."),),
                    errors=(exc.CodeTypeNotFoundError,),
                    description="No body. Doing it twice changes nothing the second time.",
                ),
            ),
            params=(CODE_TYPE_PARAM,),
        )
        for verb, summary, handler in (
            (
                "archive",
                "Archive a code type: hidden from lists, codes kept, nothing redeemable "
                "(409 REDEMPTION_CODE_TYPE_DISABLED)",
                handlers.code_type_archive,
            ),
            ("unarchive", "Bring an archived code type back", handlers.code_type_unarchive),
        )
    ),
    Endpoint(
        route="server/code-types/<str:codeType>/generate-inline",
        name="generate_inline",
        operations=(
            Operation(
                method="POST",
                operation_id="generateCodesInline",
                scope=rules.SCOPE_JOBS,
                summary=f"Generate up to {rules.INLINE_QUANTITY_MAX:,} codes and return them",
                handler=handlers.codes_generate_inline,
                auth=SERVER,
                replies=(
                    Reply(
                        status=201, schema="GeneratedCodes", description="One batch of new codes."
                    ),
                ),
                errors=GENERATE_ERRORS,
                body=generate_fields(rules.INLINE_QUANTITY_MAX),
                body_rules=GENERATE_RULES,
            ),
        ),
        params=(CODE_TYPE_PARAM,),
    ),
    Endpoint(
        route="server/code-types/<str:codeType>/generate",
        name="generate",
        operations=(
            Operation(
                method="POST",
                operation_id="generateCodesJob",
                scope=rules.SCOPE_JOBS,
                summary=f"Generate up to {rules.JOB_QUANTITY_MAX:,} codes in a background job",
                handler=handlers.codes_generate_job,
                auth=SERVER,
                replies=(JOB_ACCEPTED,),
                errors=GENERATE_ERRORS,
                body=generate_fields(rules.JOB_QUANTITY_MAX),
                body_rules=GENERATE_RULES,
            ),
        ),
        params=(CODE_TYPE_PARAM,),
    ),
    Endpoint(
        route="server/code-types/<str:codeType>/import",
        name="import",
        operations=(
            Operation(
                method="POST",
                operation_id="importCodesJob",
                scope=rules.SCOPE_JOBS,
                summary="Import codes from CSV (scanCode[,codeState][,customCodeInfo]) in a job",
                handler=handlers.codes_import_job,
                auth=SERVER,
                replies=(JOB_ACCEPTED,),
                errors=(
                    exc.CodeTypeNotFoundError,
                    exc.TypeMustBeSingleUseError,
                    exc.CodeTypeDisabledError,
                ),
                csv_body=True,
                atomic=False,
                query=(
                    Field(
                        "preserveState",
                        "boolean",
                        description="A migration import: lines keep every state and their "
                        "history (a header row names the columns, as the export writes them: "
                        "scanCode, codeState, customCodeInfo, redeemedByProfileId, "
                        "redeemedByProfileName, redeemedAt, invalidationReason, "
                        "customRedemptionInfo, createdAt, activatedAt, invalidatedAt; profileId "
                        "and profileName too). A shared type takes one row per profile "
                        "redemption.",
                    ),
                ),
                description="Body: text/csv, up to 200 MiB, streamed. Bad lines do not fail "
                "the job; they are listed in its errors.",
            ),
        ),
        params=(CODE_TYPE_PARAM,),
    ),
    Endpoint(
        route="server/codes",
        name="codes",
        operations=(
            Operation(
                method="POST",
                operation_id="addCode",
                scope=rules.SCOPE_CODES_WRITE,
                summary="Add one personal code",
                handler=handlers.code_add,
                auth=SERVER,
                replies=(Reply(status=201, schema="CodeRecord", description="Added."),),
                errors=(
                    exc.InvalidScanCodeError,
                    exc.CodeTypeNotFoundError,
                    exc.TypeMustBeSingleUseError,
                    exc.CodeDuplicateError,
                    exc.CodeTypeDisabledError,
                ),
                body=(NEW_SCAN_CODE, CODE_TYPE, INITIAL_STATE, CUSTOM_CODE_INFO),
            ),
        ),
    ),
    Endpoint(
        route="server/codes/<str:scanCode>",
        name="code",
        operations=(
            Operation(
                method="GET",
                operation_id="getCode",
                scope=rules.SCOPE_CODES_READ,
                summary="Look up one code with its attempts and history",
                handler=handlers.code_get,
                auth=SERVER,
                replies=(
                    Reply(
                        status=200,
                        schema="CodeLookup",
                        description="The code record with attempts and history.",
                    ),
                ),
                errors=(exc.InvalidScanCodeError, exc.CodeNotFoundError),
            ),
        ),
        params=(SCAN_CODE_PARAM,),
    ),
    Endpoint(
        route="server/codes/<str:scanCode>/activate",
        name="code_activate",
        operations=(
            Operation(
                method="POST",
                operation_id="activateCode",
                scope=rules.SCOPE_CODES_WRITE,
                summary="Make an Inactive code Available",
                handler=handlers.code_activate,
                auth=SERVER,
                replies=(CODE_RECORD,),
                errors=(
                    *FIND_ERRORS,
                    exc.CodeActiveError,
                    exc.CodeInvalidatedError,
                    exc.CodeRedeemedError,
                    exc.RedemptionInProgressError,
                    exc.RedemptionFailedError,
                    exc.CodeTypeDisabledError,
                ),
                body=(CODE_TYPE, ACTIVATE_CUSTOM_CODE_INFO),
            ),
        ),
        params=(SCAN_CODE_PARAM,),
    ),
    Endpoint(
        route="server/codes/<str:scanCode>/invalidate",
        name="code_invalidate",
        operations=(
            Operation(
                method="POST",
                operation_id="invalidateCode",
                scope=rules.SCOPE_CODES_WRITE,
                summary="Invalidate a code (from Inactive, Available or Failed)",
                handler=handlers.code_invalidate,
                auth=SERVER,
                replies=(CODE_RECORD,),
                errors=(
                    *FIND_ERRORS,
                    exc.CodeInvalidatedError,
                    exc.CodeRedeemedError,
                    exc.RedemptionInProgressError,
                ),
                body=(
                    CODE_TYPE,
                    Field(
                        "invalidationReason",
                        "string",
                        nullable=True,
                        max=rules.INVALIDATION_REASON_MAX,
                    ),
                ),
            ),
        ),
        params=(SCAN_CODE_PARAM,),
    ),
    Endpoint(
        route="server/codes/<str:scanCode>/custom-info",
        name="code_custom_info",
        operations=(
            Operation(
                method="PUT",
                operation_id="updateCodeCustomInfo",
                scope=rules.SCOPE_CODES_WRITE,
                summary="Replace a code's customCodeInfo if its version is current",
                handler=handlers.code_custom_info,
                auth=SERVER,
                replies=(CODE_RECORD,),
                errors=(*FIND_ERRORS, exc.VersionMismatchError, exc.CodeTypeDisabledError),
                body=(
                    CODE_TYPE,
                    Field("version", "integer", required=True, min=1, max=rules.INT32_MAX),
                    Field("customCodeInfo", "object", required=True),
                ),
            ),
        ),
        params=(SCAN_CODE_PARAM,),
    ),
    Endpoint(
        route="server/jobs/<str:jobId>",
        name="job",
        operations=(
            Operation(
                method="GET",
                operation_id="getJob",
                scope=rules.SCOPE_CODES_READ,
                summary="A background job and its progress",
                handler=handlers.job_get,
                auth=SERVER,
                replies=(Reply(status=200, schema="Job", description="The job."),),
                errors=(exc.JobNotFoundError,),
            ),
        ),
        params=(JOB_PARAM,),
    ),
    Endpoint(
        route="server/jobs/<str:jobId>/result.csv",
        name="job_result",
        operations=(
            Operation(
                method="GET",
                operation_id="getJobResult",
                scope=rules.SCOPE_CODES_READ,
                summary="The codes a generate job produced, as CSV",
                handler=handlers.job_result,
                auth=SERVER,
                replies=(
                    Reply(
                        status=200,
                        schema="CsvText",
                        description="One scan code per line.",
                        content_type=CSV,
                    ),
                ),
                errors=(exc.JobNotFoundError,),
            ),
        ),
        params=(JOB_PARAM,),
    ),
    Endpoint(
        route="server/redeem",
        name="server_redeem",
        operations=(
            Operation(
                method="POST",
                operation_id="serverRedeem",
                scope=rules.SCOPE_REDEEM,
                summary="Redeem a code on behalf of a profile",
                handler=handlers.server_redeem,
                auth=SERVER,
                replies=(
                    Reply(status=200, schema="CodeRecord", description="Redeemed."),
                    Reply(
                        status=202,
                        schema="CodeRecord",
                        description="Fulfilment is still in progress (async webhook).",
                    ),
                ),
                errors=REDEEM_ERRORS,
                body=(PROFILE_ID, PROFILE_NAME, *REDEEM_FIELDS),
                atomic=False,
                description="As the client redeem; failed redeems count per profile only.",
            ),
        ),
    ),
    Endpoint(
        route="server/profiles/<str:profileId>/redeemed-codes",
        name="profile_codes",
        operations=(
            Operation(
                method="GET",
                operation_id="profileRedeemedCodes",
                scope=rules.SCOPE_REDEEM,
                summary="Codes a profile redeemed or attempted, newest first, a page at a time",
                handler=handlers.server_profile_codes,
                auth=SERVER,
                replies=(
                    Reply(
                        status=200,
                        schema="CodeList",
                        description="Redeemed, in-progress and failed records.",
                    ),
                ),
                errors=(exc.CodeTypeNotFoundError,),
                query=(CODE_TYPE_OPTIONAL, *PAGE_FIELDS),
            ),
        ),
        params=(
            PathParam(
                name="profileId",
                description=f"The profile id ({rules.PROFILE_ID_RULE}).",
                schema={
                    "type": "string",
                    "minLength": rules.PROFILE_ID_MIN,
                    "maxLength": rules.PROFILE_ID_MAX,
                    "pattern": rules.whole(rules.TEXT_REGEX),
                },
            ),
        ),
    ),
    Endpoint(
        route="server/redemptions/<str:redemptionCodeId>/async-response",
        name="async_response",
        operations=(
            Operation(
                method="POST",
                operation_id="processAsyncResponse",
                scope=rules.SCOPE_FULFILMENT,
                summary="Report the outcome of an asynchronous fulfilment attempt",
                handler=handlers.async_response,
                auth=SERVER,
                replies=(CODE_RECORD,),
                errors=(
                    exc.CodeByIdNotFoundError,
                    exc.TypeNotAsyncError,
                    exc.AsyncBadResponseError,
                    exc.AsyncTimeoutError,
                    exc.NotInProgressError,
                    exc.AttemptMismatchError,
                ),
                body=(
                    Field("attempt", "integer", required=True, min=1, max=rules.INT32_MAX),
                    Field(
                        "asyncResponse",
                        "object",
                        required=True,
                        inner_doc=ASYNC_REPLY_DOC,
                    ),
                ),
            ),
        ),
        params=(
            PathParam(
                name="redemptionCodeId",
                description="redemptionCodeId of the record.",
                schema={"type": "string", "format": "uuid"},
            ),
        ),
    ),
)
