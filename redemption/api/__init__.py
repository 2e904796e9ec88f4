"""The JSON API at /api/v1/: thin handlers over the services, one error mapping, OpenAPI 3.1.

`endpoints/` is the table of paths and operations, written in the records of `spec.py`;
`handlers.py` holds the handlers it names; `dispatch.py` the request pipeline every endpoint
shares (credentials from `auth.py`, input checks from `validation.py`, `idempotency.py`);
`openapi.py` and `schemas.py` build the document from the table; `errors.py` maps errors.
"""
