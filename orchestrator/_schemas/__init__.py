"""The shapes of the API's request and response bodies as its OpenAPI document shows them (see ``shape``)."""
