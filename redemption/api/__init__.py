"""The JSON API of SPEC §5: thin handlers over the services, one error mapping, OpenAPI 3.1."""
