"""Component schemas of the OpenAPI document: every JSON shape the API answers with."""

from typing import Any

from redemption import exceptions as exc
from redemption import rules
from redemption.models import STATE_ORDER

TS_PATTERN = rules.whole(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")
REF = "#/components/schemas/"


def ref(name: str) -> dict[str, str]:
    """A reference to the component schema `name`."""
    return {"$ref": REF + name}


def closed(properties: dict[str, Any]) -> dict[str, Any]:
    """An object with exactly these properties, all of them required."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


TS = {"type": "string", "pattern": TS_PATTERN, "description": "ISO 8601 UTC with milliseconds"}
TS_OR_NULL = {**TS, "type": ["string", "null"]}
STR_OR_NULL = {"type": ["string", "null"]}
OBJECT = {"type": "object"}
STATE = {"type": "string", "enum": list(STATE_ORDER)}
NEXT_CURSOR = {
    "type": ["string", "null"],
    "pattern": rules.CURSOR_PATTERN,
    "description": "Pass as `cursor` for the next page; null on the last page.",
}

CODE_RECORD_PROPERTIES: dict[str, Any] = {
    "redemptionCodeId": {"type": "string", "format": "uuid"},
    "scanCode": {"type": "string"},
    "codeType": {"type": "string"},
    "codeUseType": {"type": "string", "enum": ["SINGLE", "MULTI"]},
    "codeState": STATE,
    "version": {"type": "integer", "minimum": 1},
    "customCodeInfo": OBJECT,
    "customRedemptionInfo": OBJECT,
    "redeemedByProfileId": STR_OR_NULL,
    "redeemedByProfileName": STR_OR_NULL,
    "invalidationReason": STR_OR_NULL,
    "batchId": {"type": ["string", "null"], "format": "uuid"},
    "currentAttempt": {"type": "integer", "minimum": 0, "description": "0 = none yet"},
    "createdAt": TS,
    "activatedAt": TS_OR_NULL,
    "redeemedAt": TS_OR_NULL,
    "invalidatedAt": TS_OR_NULL,
    "updatedAt": TS,
}

_TEXT = {"type": "string", "pattern": rules.whole(rules.TEXT_REGEX)}
SCHEMAS: dict[str, Any] = {
    # Free-form JSON in requests (customCodeInfo, customRedemptionInfo): any JSON object whose
    # text has no NUL, at most 32 levels deep and 16 KB as compact JSON (those two are checked,
    # not stated: JSON Schema has no words for them).
    "JsonObject": {
        "type": "object",
        "propertyNames": _TEXT,
        "additionalProperties": ref("JsonValue"),
        "description": f"A JSON object of {rules.JSON_OBJECT_RULE}, nested at most "
        f"{rules.JSON_DEPTH_MAX} levels; no text may hold NUL.",
    },
    "JsonValue": {
        "anyOf": [
            _TEXT,
            {"type": ["number", "boolean", "null"]},
            {"type": "array", "items": ref("JsonValue")},
            ref("JsonObject"),
        ]
    },
    "CodeRecord": closed(CODE_RECORD_PROPERTIES),
    "Attempt": closed(
        {
            "attempt": {"type": "integer", "minimum": 1},
            "profileId": {"type": "string"},
            "state": STATE,
            "startedAt": TS,
            "finishedAt": TS_OR_NULL,
            "errorCode": STR_OR_NULL,
            "errorMsg": STR_OR_NULL,
            "response": {"type": ["object", "null"]},
        }
    ),
    "AuditEvent": closed(
        {
            "at": TS,
            "actorKind": {"type": "string"},
            "actor": {"type": "string"},
            "action": {"type": "string"},
            "details": OBJECT,
        }
    ),
    "CodeLookup": closed(
        {
            **CODE_RECORD_PROPERTIES,
            "attempts": {"type": "array", "items": ref("Attempt")},
            "history": {"type": "array", "items": ref("AuditEvent")},
        }
    ),
    "CodeList": closed(
        {
            "codes": {"type": "array", "items": ref("CodeRecord")},
            "nextCursor": NEXT_CURSOR,
        }
    ),
    "CodeType": closed(
        {
            "codeType": {"type": "string", "pattern": rules.CODE_TYPE_NAME_PATTERN},
            "description": {"type": "string"},
            "codeUseType": {"type": "string", "enum": ["SINGLE", "MULTI"]},
            "scanCode": {"type": ["string", "null"], "description": "MULTI only"},
            "validStart": TS_OR_NULL,
            "validEnd": TS_OR_NULL,
            "maxRedemptions": {"type": ["integer", "null"], "minimum": 1},
            "redemptionCount": {"type": "integer", "minimum": 0},
            "customCodeInfo": OBJECT,
            "isDisabled": {"type": "boolean"},
            "archivedAt": {
                **TS_OR_NULL,
                "description": "When the type was archived (hidden from lists by default, "
                "nothing redeemable); null while it is in use.",
            },
            "fulfillment": {
                "oneOf": [
                    {"type": "null"},
                    closed(
                        {
                            "url": {"type": "string"},
                            "async": {"type": "boolean"},
                            "maxRetries": {
                                "type": "integer",
                                "minimum": rules.WEBHOOK_RETRIES_MIN,
                                "maximum": rules.WEBHOOK_RETRIES_MAX,
                            },
                            "timeoutSeconds": {
                                "type": "integer",
                                "minimum": rules.WEBHOOK_TIMEOUT_MIN,
                                "maximum": rules.WEBHOOK_TIMEOUT_MAX,
                            },
                        }
                    ),
                ]
            },
            "version": {"type": "integer", "minimum": 1},
            "createdAt": TS,
            "updatedAt": TS,
            "stateCounts": closed({s: {"type": "integer", "minimum": 0} for s in STATE_ORDER}),
        }
    ),
    "CodeTypeDeleted": closed(
        {
            "codeType": {"type": "string", "pattern": rules.CODE_TYPE_NAME_PATTERN},
            "deleted": {"type": "boolean", "const": True},
        }
    ),
    "CodeTypeList": closed(
        {
            "codeTypes": {"type": "array", "items": ref("CodeType")},
            "nextCursor": NEXT_CURSOR,
        }
    ),
    "UserToken": closed(
        {
            "token": {"type": "string", "pattern": r"^ut_"},
            "profileId": {"type": "string"},
            "expiresAt": TS,
        }
    ),
    "GeneratedCodes": closed(
        {
            "batchId": {"type": "string", "format": "uuid"},
            "generatedScanCodes": {"type": "array", "items": {"type": "string"}},
        }
    ),
    "JobError": closed(
        {
            "line": {"type": ["integer", "null"]},
            "scanCode": STR_OR_NULL,
            "code": {"type": "string"},
            "message": {"type": "string"},
        }
    ),
    "Job": closed(
        {
            "jobId": {"type": "string", "format": "uuid"},
            "kind": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "running", "succeeded", "failed"]},
            "total": {"type": "integer", "minimum": 0},
            "done": {"type": "integer", "minimum": 0},
            "errors": {"type": "array", "items": ref("JobError")},
            "createdAt": TS,
            "finishedAt": TS_OR_NULL,
            "resultUrl": STR_OR_NULL,
        }
    ),
    "CsvText": {"type": "string"},
    "OpenApiDocument": {"type": "object", "required": ["openapi", "info", "paths"]},
    "Health": closed({"status": {"const": "ok"}}),
    "Ready": closed({"status": {"const": "ready"}}),
}

DETAILS: dict[str, dict[str, Any]] = {
    exc.InvalidParameterError.code: {
        "type": "object",
        "required": ["fields"],
        "properties": {
            "fields": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": "Each bad field (or header, or 'body') and what it must be.",
            }
        },
    },
    exc.RedeemedBySelfError.code: {
        "type": "object",
        "required": ["record"],
        "properties": {"record": ref("CodeRecord")},
    },
    exc.MaxFailedExceededError.code: {
        "type": "object",
        "required": ["retryAfterSeconds"],
        "properties": {"retryAfterSeconds": {"type": "integer", "minimum": 1}},
    },
    exc.FulfillmentUrlForbiddenError.code: {
        "type": "object",
        "required": ["fields"],
        "properties": {
            "fields": {
                "type": "object",
                "required": ["fulfillment.url"],
                "additionalProperties": {"type": "string"},
                "description": "Why the URL is refused.",
            }
        },
    },
    exc.InsufficientScopeError.code: {
        "type": "object",
        "required": ["scope"],
        "properties": {"scope": {"type": "string", "description": "The scope the call needs."}},
    },
    exc.MethodNotAllowedError.code: {
        "type": "object",
        "required": ["allowed"],
        "properties": {"allowed": {"type": "array", "items": {"type": "string"}}},
    },
}


def error_schema_name(error: type[exc.RedemptionError]) -> str:
    """The component name of one error's envelope schema."""
    return f"Error_{error.code}"


def error_schema(error: type[exc.RedemptionError]) -> dict[str, Any]:
    """The envelope one error answers with: its code and reason code are constants."""
    return closed(
        {
            "error": {
                **closed(
                    {
                        "code": {"const": error.code},
                        "reasonCode": {"const": error.reason_code},
                        "message": {"type": "string"},
                        "details": DETAILS.get(error.code, OBJECT),
                    }
                ),
                "description": error.default_message,
            }
        }
    )
