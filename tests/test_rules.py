"""One rule, one place: forms, API fields, the OpenAPI document, URL converters and columns all
read `redemption.rules`, and accept and refuse the same values it does."""

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from redemption import exceptions as exc
from redemption import forms, fulfillment, models, rules
from redemption.api.endpoints import ENDPOINTS
from redemption.api.openapi import document
from redemption.api.validation import Field, FieldError
from redemption.services import bulk

APP = Path(__file__).resolve().parent.parent / "redemption"

NAMES_ACCEPTED = ["a", "xmas-2026", "promo.1", "A_b-9", ".a", "a.", "..a", "-", "_", "x" * 64]
NAMES_REFUSED = ["", ".", "..", "...", "x" * 65, "has space", "é", "semi;colon", "tab\tbed"]


def test_the_name_rule_itself():
    assert all(rules.is_code_type_name(n) for n in NAMES_ACCEPTED)
    assert not any(rules.is_code_type_name(n) for n in NAMES_REFUSED)
    assert not rules.is_code_type_name("trailing\n")
    assert not rules.is_code_type_name(None)


# --- URL converters -------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES_ACCEPTED + NAMES_REFUSED)
def test_a_portal_url_names_a_code_type_exactly_when_the_rule_accepts_the_name(name):
    base = reverse("redemption:inventory")

    try:
        match: Any = resolve(f"{base}{name}/edit/")
    except Resolver404:
        match = None
    try:
        reversed_url: str | None = reverse("redemption:code_type_edit", args=[name])
    except NoReverseMatch:
        reversed_url = None

    accepted = rules.is_code_type_name(name)
    assert (match is not None and match.url_name == "code_type_edit") == accepted
    assert (reversed_url is not None) == accepted


@pytest.mark.parametrize(
    ("canonical", "accepted"),
    [("ABCD", True), ("A" * 64, True), ("ABC", False), ("A" * 65, False), ("abcd", False)],
)
def test_a_portal_url_names_a_code_exactly_when_it_is_canonical(canonical, accepted):
    assert rules.is_canonical_scan_code(canonical) == accepted
    try:
        reverse("redemption:code_detail", args=[canonical])
    except NoReverseMatch:
        assert not accepted
    else:
        assert accepted


# --- API fields and the OpenAPI document ------------------------------------------------------


def _fields(fields: tuple[Field, ...], prefix: str = "") -> list[tuple[str, Field]]:
    found = []
    for f in fields:
        found.append((prefix + f.name, f))
        found += _fields(f.inner or f.inner_doc, f"{prefix}{f.name}.")
    return found


def _api_fields() -> list[tuple[str, str, Field]]:
    """(operationId, dotted field name, field) for every body and query field."""
    return [
        (op.operation_id, name, f)
        for endpoint in ENDPOINTS
        for op in endpoint.operations
        for name, f in _fields((*(op.body or ()), *op.query))
    ]


# Dotted field name -> (min, max) of its length or value, as rules.py says.
API_LIMITS = {
    "profileId": (rules.PROFILE_ID_MIN, rules.PROFILE_ID_MAX),
    "profileName": (None, rules.PROFILE_NAME_MAX),
    "description": (None, rules.DESCRIPTION_MAX),
    "invalidationReason": (None, rules.INVALIDATION_REASON_MAX),
    "ttlSeconds": (rules.USER_TOKEN_TTL_MIN, rules.USER_TOKEN_TTL_MAX),
    "prefix": (None, rules.PREFIX_INPUT_MAX),
    "maxRedemptions": (rules.MAX_REDEMPTIONS_MIN, rules.INT32_MAX),
    "fulfillment.url": (None, rules.WEBHOOK_URL_MAX),
    "fulfillment.maxRetries": (rules.WEBHOOK_RETRIES_MIN, rules.WEBHOOK_RETRIES_MAX),
    "fulfillment.timeoutSeconds": (rules.WEBHOOK_TIMEOUT_MIN, rules.WEBHOOK_TIMEOUT_MAX),
    "algorithmDetails.length": (rules.CODE_LENGTH_MIN, rules.CODE_LENGTH_MAX),
}


def test_api_fields_take_their_limits_from_the_rules():
    seen: dict[str, set[tuple[int | None, int | None]]] = {}
    for _, name, f in _api_fields():
        if name in API_LIMITS:
            seen.setdefault(name, set()).add((f.min, f.max))
        if name == "scanCode" and f.max is not None:
            assert f.max == rules.SCAN_CODE_WRITTEN_MAX

    assert seen == {name: {limits} for name, limits in API_LIMITS.items()}


def test_the_api_quantity_limits_are_the_rules_for_inline_and_job_generation():
    quantity = {op: (f.min, f.max) for op, name, f in _api_fields() if name == "quantity"}

    assert quantity == {
        "generateCodesInline": (rules.QUANTITY_MIN, rules.INLINE_QUANTITY_MAX),
        "generateCodesJob": (rules.QUANTITY_MIN, rules.JOB_QUANTITY_MAX),
    }


def test_every_code_type_field_uses_the_name_pattern_and_agrees_with_the_rule():
    code_type_fields = [f for _, name, f in _api_fields() if name == "codeType"]

    assert len(code_type_fields) >= 5
    for f in code_type_fields:
        assert f.pattern == rules.CODE_TYPE_NAME_PATTERN
        for sample in NAMES_ACCEPTED + NAMES_REFUSED:
            try:
                f.clean(sample, "codeType")
            except FieldError as err:
                assert not rules.is_code_type_name(sample), sample
                assert rules.CODE_TYPE_NAME_RULE in str(err)
            else:
                assert rules.is_code_type_name(sample), sample


def test_the_webhook_url_field_agrees_with_the_rule():
    (url,) = {f for _, name, f in _api_fields() if name == "fulfillment.url"}
    samples = ["https://shop.example/hook", "http://10.0.0.1:8080/x", "ftp://x", "http:// x"]
    samples += ["https://shop.example/hook\n"]
    samples += ["https://" + "x" * (rules.WEBHOOK_URL_MAX - 8), "https://" + "x" * 493]

    for sample in samples:
        try:
            url.clean(sample, "fulfillment.url")
        except FieldError:
            assert not rules.is_webhook_url(sample), sample
        else:
            assert rules.is_webhook_url(sample), sample
    assert url.pattern == rules.WEBHOOK_URL_PATTERN


def test_the_openapi_document_states_the_same_rules():
    doc = document()
    schemas = doc["components"]["schemas"]
    code_type = schemas["CodeType"]["properties"]
    fulfillment = next(s for s in code_type["fulfillment"]["oneOf"] if s.get("type") == "object")
    idempotency = {
        p["schema"]["pattern"]
        for path in doc["paths"].values()
        for op in path.values()
        for p in op.get("parameters", [])
        if p["name"] == "Idempotency-Key"
    }
    body_patterns = {
        prop["pattern"]
        for path in doc["paths"].values()
        for op in path.values()
        for content in op.get("requestBody", {}).get("content", {}).values()
        for name, prop in content["schema"].get("properties", {}).items()
        if name == "codeType"
    }

    assert code_type["codeType"]["pattern"] == rules.CODE_TYPE_NAME_PATTERN
    assert body_patterns == {rules.CODE_TYPE_NAME_PATTERN}
    assert fulfillment["properties"]["maxRetries"]["maximum"] == rules.WEBHOOK_RETRIES_MAX
    assert fulfillment["properties"]["timeoutSeconds"]["maximum"] == rules.WEBHOOK_TIMEOUT_MAX
    assert idempotency == {rules.IDEMPOTENCY_KEY_PATTERN}


# --- forms --------------------------------------------------------------------------------------

# (form, field, attribute, value rules.py gives it)
FORM_LIMITS = [
    (forms.CodeTypeForm, "name", "max_length", rules.CODE_TYPE_NAME_MAX),
    (forms.CodeTypeForm, "description", "max_length", rules.DESCRIPTION_MAX),
    (forms.CodeTypeForm, "scan_code", "max_length", rules.SCAN_CODE_WRITTEN_MAX),
    (forms.CodeTypeForm, "max_redemptions", "min_value", rules.MAX_REDEMPTIONS_MIN),
    (forms.CodeTypeForm, "max_redemptions", "max_value", rules.INT32_MAX),
    (forms.CodeTypeForm, "fulfillment_url", "max_length", rules.WEBHOOK_URL_MAX),
    (forms.CodeTypeForm, "fulfillment_max_retries", "min_value", rules.WEBHOOK_RETRIES_MIN),
    (forms.CodeTypeForm, "fulfillment_max_retries", "max_value", rules.WEBHOOK_RETRIES_MAX),
    (forms.CodeTypeForm, "fulfillment_timeout_seconds", "min_value", rules.WEBHOOK_TIMEOUT_MIN),
    (forms.CodeTypeForm, "fulfillment_timeout_seconds", "max_value", rules.WEBHOOK_TIMEOUT_MAX),
    (forms.GenerateForm, "quantity", "min_value", rules.QUANTITY_MIN),
    (forms.GenerateForm, "quantity", "max_value", rules.JOB_QUANTITY_MAX),
    (forms.GenerateForm, "length", "min_value", rules.CODE_LENGTH_MIN),
    (forms.GenerateForm, "length", "max_value", rules.CODE_LENGTH_MAX),
    (forms.GenerateForm, "code_prefix", "max_length", rules.PREFIX_MAX),
    (forms.AddCodeForm, "scan_code", "max_length", rules.SCAN_CODE_WRITTEN_MAX),
    (forms.ReasonForm, "reason", "max_length", rules.INVALIDATION_REASON_MAX),
    (forms.OptionalReasonForm, "reason", "max_length", rules.INVALIDATION_REASON_MAX),
    (forms.ProfileForm, "profile", "max_length", rules.PROFILE_SEARCH_MAX),
    (forms.ServerKeyForm, "name", "max_length", rules.SERVER_KEY_NAME_MAX),
    (forms.ServerKeyForm, "expires_in_days", "min_value", rules.SERVER_KEY_EXPIRY_DAYS_MIN),
    (forms.ServerKeyForm, "expires_in_days", "max_value", rules.SERVER_KEY_EXPIRY_DAYS_MAX),
]


@pytest.mark.parametrize(("form", "field", "attribute", "expected"), FORM_LIMITS)
def test_form_fields_take_their_limits_from_the_rules(form, field, attribute, expected):
    assert getattr(form.base_fields[field], attribute) == expected


def _code_type_form(name: str) -> forms.CodeTypeForm:
    return forms.CodeTypeForm(
        data={
            "name": name,
            "use_type": "SINGLE",
            "fulfillment_max_retries": "0",
            "fulfillment_timeout_seconds": "30",
        }
    )


@pytest.mark.parametrize("name", NAMES_ACCEPTED + NAMES_REFUSED)
def test_the_code_type_form_accepts_exactly_the_names_the_rule_accepts(name):
    form = _code_type_form(name)

    assert form.is_valid() == rules.is_code_type_name(name), form.errors


@pytest.mark.parametrize(
    "url", ["ftp://shop.example/hook", "https://.shop.example/", "https://" + "x" * 493 + ".com"]
)
def test_the_code_type_form_refuses_every_webhook_url_the_rule_refuses(url):
    form = forms.CodeTypeForm(
        data={
            "name": "hooked",
            "use_type": "SINGLE",
            "fulfillment_url": url,
            "fulfillment_max_retries": "0",
            "fulfillment_timeout_seconds": "30",
        }
    )

    assert not rules.is_webhook_url(url)
    assert not form.is_valid()
    assert list(form.errors) == ["fulfillment_url"]


def _portal_forms() -> list[type[forms.PortalForm]]:
    return [
        obj
        for obj in vars(forms).values()
        if isinstance(obj, type) and issubclass(obj, forms.PortalForm)
    ]


@pytest.mark.parametrize("form", _portal_forms(), ids=lambda f: f.__name__)
def test_each_form_maps_service_fields_onto_fields_it_has(form):
    for service_field, form_field in form.service_fields.items():
        assert form_field in form.base_fields, (service_field, form_field)
        assert service_field not in form.base_fields  # same-named fields need no entry


def test_a_form_finds_the_field_a_service_error_names():
    generate = forms.GenerateForm()

    assert generate.field_for("algorithmDetails.length") == "length"
    assert generate.field_for("prefix") == "code_prefix"
    assert generate.field_for("quantity") == "quantity"
    assert generate.field_for("nonsense") is None
    assert forms.CodeTypeForm().field_for("fulfillment.url") == "fulfillment_url"


def test_no_view_writes_its_own_field_map():
    for path in sorted((APP / "views").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "report_error":
                assert len(node.args) <= 3 and not node.keywords, f"{path.name}:{node.lineno}"


# --- columns ------------------------------------------------------------------------------------

COLUMN_WIDTHS = [
    (models.CodeType, "name", rules.CODE_TYPE_NAME_MAX),
    (models.CodeType, "scan_code", rules.SCAN_CODE_WRITTEN_MAX),
    (models.CodeType, "canonical_scan_code", rules.SCAN_CODE_MAX),
    (models.CodeType, "fulfillment_url", rules.WEBHOOK_URL_MAX),
    (models.Code, "scan_code", rules.SCAN_CODE_WRITTEN_MAX),
    (models.Code, "canonical", rules.SCAN_CODE_MAX),
    (models.Code, "redeemed_by_profile_id", rules.PROFILE_ID_MAX),
    (models.Code, "redeemed_by_profile_name", rules.PROFILE_NAME_MAX),
    (models.SharedRedemption, "profile_id", rules.PROFILE_ID_MAX),
    (models.SharedRedemption, "profile_name", rules.PROFILE_NAME_MAX),
    (models.Attempt, "profile_id", rules.PROFILE_ID_MAX),
    (models.Batch, "prefix", rules.PREFIX_WRITTEN_MAX),
    (models.Job, "code_type_name", rules.CODE_TYPE_NAME_MAX),
    (models.AuditEvent, "code_type_name", rules.CODE_TYPE_NAME_MAX),
    (models.AuditEvent, "scan_code", rules.SCAN_CODE_WRITTEN_MAX),
    (models.AuditEvent, "profile_id", rules.PROFILE_ID_MAX),
    (models.ServerKey, "name", rules.SERVER_KEY_NAME_MAX),
    (models.IdempotencyRecord, "key", rules.IDEMPOTENCY_KEY_MAX),
]


@pytest.mark.parametrize(("model", "field", "width"), COLUMN_WIDTHS)
def test_columns_are_as_wide_as_the_rules_allow(model, field, width):
    assert model._meta.get_field(field).max_length == width


# --- messages and the services ------------------------------------------------------------------


@pytest.mark.django_db
def test_a_refused_quantity_names_the_limit_from_the_rules(ops, code_type):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.job_generate_start(
            actor=ops, code_type_name=code_type.name, quantity=rules.JOB_QUANTITY_MAX + 1
        )

    assert f"{rules.JOB_QUANTITY_MAX:,}" in caught.value.details["fields"]["quantity"]


def test_the_json_size_rule_counts_compact_json():
    just_fits = {"x": "a" * (rules.JSON_OBJECT_MAX_BYTES - len('{"x":""}'))}
    one_more = {"x": just_fits["x"] + "a"}

    assert rules.json_fits(rules.compact_json(just_fits))
    assert not rules.json_fits(rules.compact_json(one_more))
    assert len(json.dumps(just_fits)) > rules.JSON_OBJECT_MAX_BYTES  # spaces are not counted


@pytest.mark.parametrize(
    ("value", "accepted"),
    [(1, True), (10, True), (0, False), (11, False), (True, False), ("5", False), (5.0, False)],
)
def test_a_whole_number_is_an_int_and_not_a_bool(value, accepted):
    assert rules.is_whole_number_in(value, 1, 10) == accepted


# --- JSON every database can store -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"a": [1, 2.5, None, True, "é", {"b": "😀"}]}, None),
        ({"a": float("inf")}, "finite"),
        ({"a": [float("-inf")]}, "finite"),
        ({"a": float("nan")}, "finite"),
        ({"a": "x\x00"}, "NUL"),
        ({"a\x00": 1}, "NUL"),
        ({"a": {"b": "\ud800"}}, "surrogates"),
        ({"\udfff": 1}, "surrogates"),
        (json.loads("[" * 33 + "]" * 33), "nest"),
        (json.loads("[" * 31 + "]" * 31), None),
    ],
)
def test_json_any_database_stores(value, problem):
    found = rules.json_value_problem(value)

    assert (found is None) if problem is None else (problem in found)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('{"a": 1, "a": 2}', "duplicate key"),
        ('{"a": NaN}', "NaN"),
        ('{"a": -Infinity}', "Infinity"),
        ('{"a": ' + "1" * 5000 + "}", "4,300 digits"),
        ("[" * 200_000, "nest"),
        ("{", "Expecting"),
    ],
)
def test_strict_json_parsing_says_what_is_wrong(text, words):
    with pytest.raises(ValueError, match=words):
        rules.json_loads_strict(text)


@pytest.mark.parametrize("info", [{"a": float("inf")}, {"a": "\x00"}, {"a": "\ud800"}])
def test_services_refuse_json_no_database_stores_whatever_the_caller(ops, code_type, info):
    with pytest.raises(exc.InvalidParameterError) as caught:
        bulk.codes_generate_inline(
            actor=ops, code_type_name=code_type.name, quantity=1, custom_code_info=info
        )
    with pytest.raises(ValueError, match="reply"):
        fulfillment.parse_reply({"success": True, "customRedemptionInfo": info}, strict=False)

    assert list(caught.value.details["fields"]) == ["customCodeInfo"]


# --- one place --------------------------------------------------------------------------------


def test_rules_is_a_leaf():
    tree = ast.parse((APP / "rules.py").read_text())
    imported = {
        alias.name if isinstance(node, ast.Import) else node.module or ""
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }

    assert not {m for m in imported if m.startswith("redemption")}


# Spellings of a rule that would mean it is written a second time.
RESTATED = [
    r"A-Za-z0-9_.",  # the code type name's characters
    r"(?![.$])[A-Za-z0-9",  # the webhook URL's host start
    r"\x20-\x7e",  # the Idempotency-Key's characters
    "{4,64}",  # the canonical scan code's length
]


def test_no_other_module_restates_a_pattern_of_the_rules():
    found = [
        f"{path.relative_to(APP)}: {spelling}"
        for path in sorted(APP.rglob("*.py"))
        if path.name != "rules.py" and "migrations" not in path.parts
        for spelling in RESTATED
        if spelling in path.read_text()
    ]

    assert found == []


def test_the_spellings_looked_for_are_those_of_the_rules():
    regexes = [
        rules.CODE_TYPE_NAME_REGEX,
        rules.WEBHOOK_URL_PATTERN,
        rules.IDEMPOTENCY_KEY_REGEX,
        rules.SCAN_CODE_CANONICAL_REGEX,
    ]

    assert [any(spelling in r for r in regexes) for spelling in RESTATED] == [True] * 4
