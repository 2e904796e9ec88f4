"""Thin JSON handlers: translate one validated call into one service or selector call."""

import uuid
from typing import Any

from django.http import HttpResponse, HttpResponseBase
from django.urls import reverse

from redemption import exceptions as exc
from redemption import records, rules, selectors, services
from redemption.actors import Actor, Profile
from redemption.api.errors import JSON, json_response
from redemption.api.spec import Call
from redemption.api.validation import text_ok
from redemption.csv_out import csv_download
from redemption.models import UseType
from redemption.records import attempt_record, audit_record, code_record, code_type_record, ts
from redemption.services import bulk
from redemption.services import keys as key_services

# --- path input and shared replies ----------------------------------------------------------


def _code_type_name(value: str) -> str:
    """A path's code type name; one that cannot exist is simply not found."""
    if not rules.is_code_type_name(value):
        raise exc.CodeTypeNotFoundError(details={"codeType": value[: rules.CODE_TYPE_NAME_MAX]})
    return value


def _profile_id(value: str) -> str:
    if not rules.is_profile_id(value) or not text_ok(value):
        raise exc.invalid_fields({"profileId": rules.PROFILE_ID_RULE})
    return value


def _job_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise exc.JobNotFoundError(details={"jobId": value[:64]}) from None


def _type_filter(query: dict[str, Any]) -> int | None:
    """The id of the code type the query filters on, if it names one."""
    name = query.get("codeType")
    if name is None:
        return None
    return selectors.code_type_get(name).pk  # an unknown filter is an error, not an empty list


def _limit(query: dict[str, Any]) -> int:
    return query.get("limit", rules.PAGE_LIMIT_DEFAULT)


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
        minting_key_id=call.identity.minting_key_id,
    )
    return json_response(code_record(result.record), status=202 if result.in_progress else 200)


def client_redeem(call: Call) -> HttpResponse:
    assert call.identity.profile is not None
    return _redeem(call, call.identity.profile)


def server_redeem(call: Call) -> HttpResponse:
    return _redeem(call, Profile(call.body["profileId"], call.body.get("profileName")))


def _codes_list(call: Call, profile_id: str, *, redeemed_only: bool) -> HttpResponse:
    page = selectors.profile_records_page(
        profile_id,
        code_type_id=_type_filter(call.query),
        redeemed_only=redeemed_only,
        cursor=call.query.get("cursor"),
        limit=_limit(call.query),
    )
    return json_response(
        {"codes": [code_record(r) for r in page.records], "nextCursor": page.next_cursor}
    )


def client_redeemed_codes(call: Call) -> HttpResponse:
    assert call.identity.profile is not None
    return _codes_list(call, call.identity.profile.id, redeemed_only=True)


def server_profile_codes(call: Call) -> HttpResponse:
    return _codes_list(call, _profile_id(call.path["profileId"]), redeemed_only=False)


def user_token_create(call: Call) -> HttpResponse:
    b = call.body
    minted = key_services.user_token_mint(
        actor=call.identity.actor,
        profile_id=b["profileId"],
        profile_name=b.get("profileName"),
        ttl_seconds=b.get("ttlSeconds", rules.USER_TOKEN_TTL_DEFAULT),
    )
    return json_response(
        {"token": minted.token, "profileId": minted.profile_id, "expiresAt": ts(minted.expires_at)},
        status=201,
    )


def code_types_list(call: Call) -> HttpResponse:
    q = call.query
    page = selectors.code_types_page(
        search=q.get("search"),
        use_type=q.get("useType"),
        disabled=q.get("disabled"),
        has_webhook=q.get("hasWebhook"),
        archived=q.get("archived", False),
        cursor=q.get("cursor"),
        limit=_limit(q),
    )
    return json_response(
        {
            "codeTypes": [code_type_record(r["code_type"], r["counts"]) for r in page.rows],
            "nextCursor": page.next_cursor,
        }
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


def code_type_delete(call: Call) -> HttpResponse:
    name = _code_type_name(call.path["codeType"])
    services.code_type_delete(actor=call.identity.actor, name=name)
    return json_response({"codeType": name, "deleted": True})


def code_type_archive(call: Call) -> HttpResponse:
    name = _code_type_name(call.path["codeType"])
    return _code_type_json(services.code_type_archive(actor=call.identity.actor, name=name))


def code_type_unarchive(call: Call) -> HttpResponse:
    name = _code_type_name(call.path["codeType"])
    ct = services.code_type_archive(actor=call.identity.actor, name=name, archived=False)
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
    name = _code_type_name(call.path["codeType"])
    return generate_kwargs(call.identity.actor, name, call.body)


def generate_kwargs(actor: Actor, code_type_name: str, b: dict[str, Any]) -> dict[str, Any]:
    """The generate services' arguments from a checked generate body (API and S2S)."""
    return {
        "actor": actor,
        "code_type_name": code_type_name,
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
        bulk.job_import_start(
            actor=call.identity.actor,
            code_type_name=name,
            upload=call.upload,
            preserve_state=bool(call.query.get("preserveState")),
        )
    )


def job_get(call: Call) -> HttpResponse:
    return json_response(records.job_record(bulk.job_get(_job_id(call.path["jobId"]))))


def job_result(call: Call) -> HttpResponseBase:
    job = bulk.job_get(_job_id(call.path["jobId"]))
    rows = bulk.job_result_rows(job)  # raises before streaming starts when there is no result
    return csv_download(rows, f"job-{job.pk}.csv")


def async_response(call: Call) -> HttpResponse:
    record = services.process_async_response(
        actor=call.identity.actor,
        redemption_id=call.path["redemptionCodeId"],
        attempt=call.body["attempt"],
        async_response=call.body["asyncResponse"],
    )
    return json_response(code_record(record))


def openapi_document(call: Call) -> HttpResponse:
    """Serve the OpenAPI document the dispatcher was given."""
    return HttpResponse(call.openapi_document(), content_type=JSON)
