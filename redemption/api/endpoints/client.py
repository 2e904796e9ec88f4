"""Endpoints a client app calls for one end user, with a user token."""

from redemption import exceptions as exc
from redemption.api import handlers
from redemption.api.auth import CLIENT
from redemption.api.endpoints.shared import (
    CODE_TYPE_OPTIONAL,
    PAGE_FIELDS,
    REDEEM_ERRORS,
    REDEEM_FIELDS,
)
from redemption.api.spec import Endpoint, Operation, Reply

CLIENT_ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        route="client/redeem",
        name="client_redeem",
        operations=(
            Operation(
                method="POST",
                operation_id="clientRedeem",
                summary="Redeem a code for the token's profile",
                handler=handlers.client_redeem,
                auth=CLIENT,
                replies=(
                    Reply(status=200, schema="CodeRecord", description="Redeemed."),
                    Reply(
                        status=202,
                        schema="CodeRecord",
                        description="Fulfilment is still in progress (async webhook).",
                    ),
                ),
                errors=REDEEM_ERRORS,
                body=REDEEM_FIELDS,
                atomic=False,
                tag="client",
                minting_key_checked_by_service=True,
                description="Failed redeems are counted per profile and per client IP; "
                "past the limit the answer is 429 with Retry-After. "
                "REDEMPTION_CODE_REDEEMED_BY_SELF carries the record in details.record.",
            ),
        ),
    ),
    Endpoint(
        route="client/redeemed-codes",
        name="client_redeemed_codes",
        operations=(
            Operation(
                method="GET",
                operation_id="clientRedeemedCodes",
                summary="Codes the token's profile redeemed, newest first, a page at a time",
                handler=handlers.client_redeemed_codes,
                auth=CLIENT,
                replies=(
                    Reply(
                        status=200,
                        schema="CodeList",
                        description="Redeemed codes only; nextCursor is null on the last page.",
                    ),
                ),
                errors=(exc.CodeTypeNotFoundError,),
                query=(CODE_TYPE_OPTIONAL, *PAGE_FIELDS),
                tag="client",
            ),
        ),
    ),
)
