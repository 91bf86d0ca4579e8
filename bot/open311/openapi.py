"""The OpenAPI 3 description of the Open311 routes (served at /open311/v2/openapi.json)."""

from __future__ import annotations

from typing import Any

from bot.open311.params import MAX_FORM, MAX_PAGE
from bot.open311.render import PREFIX
from storage.models import STATUSES


def openapi_document(city: Any, max_page_size: int = 500) -> dict[str, Any]:
    """OpenAPI 3.0 description of the routes in `bot.open311.routes`."""
    nullable_str = {"type": "string", "nullable": True}
    error = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["code", "description"],
            "properties": {"code": {"type": "integer"}, "description": {"type": "string"}},
        },
    }
    service = {
        "type": "object",
        "required": ["service_code", "service_name", "metadata", "type"],
        "properties": {
            "service_code": {"type": "string"},
            "service_name": {"type": "string"},
            "description": {"type": "string"},
            "metadata": {"type": "boolean"},
            "type": {"type": "string", "enum": ["realtime", "batch", "blackbox"]},
            "keywords": {"type": "string"},
            "group": {"type": "string"},
        },
    }
    note = {
        "type": "object",
        "properties": {
            "datetime": {"type": "string", "format": "date-time"},
            "type": {"type": "string"},
            "label": {"type": "string", "description": "what happened, in the caller's language"},
            "status": {"type": "string", "nullable": True, "enum": ["open", "closed", None]},
            "extended_status": nullable_str,
            "description": nullable_str,
        },
    }
    request_schema = {
        "type": "object",
        "required": ["service_request_id", "status", "service_code", "requested_datetime"],
        "properties": {
            "service_request_id": {"type": "string"},
            "status": {"type": "string", "enum": ["open", "closed"]},
            "extended_status": {"type": "string", "enum": list(STATUSES)},
            "status_notes": nullable_str,
            "service_name": {"type": "string"},
            "service_code": {"type": "string"},
            "description": {"type": "string"},
            "agency_responsible": {"type": "string"},
            "agency_code": {"type": "string"},
            "service_notice": nullable_str,
            "requested_datetime": {"type": "string", "format": "date-time"},
            "updated_datetime": {"type": "string", "format": "date-time"},
            "expected_datetime": {"type": "string", "format": "date-time", "nullable": True},
            "address": nullable_str,
            "address_id": nullable_str,
            "zipcode": nullable_str,
            "lat": {"type": "number", "nullable": True},
            "long": {"type": "number", "nullable": True},
            "media_url": nullable_str,
            "media_urls": {"type": "array", "items": {"type": "string"}},
            "kelurahan": nullable_str,
            "kecamatan": nullable_str,
            "supporters": {"type": "integer"},
            "notes": {"type": "array", "items": note},
            "anonymous": {"type": "boolean"},
            "channel": {"type": "string"},
            "place_text": nullable_str,
            "first_response_datetime": {"type": "string", "nullable": True},
            "resolved_datetime": {"type": "string", "nullable": True},
        },
    }
    created = {
        "type": "array",
        "items": {
            "type": "object",
            "required": ["service_request_id"],
            "properties": {
                "service_request_id": {"type": "string"},
                "service_notice": nullable_str,
                "account_id": nullable_str,
            },
        },
    }

    def q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
        return {
            "name": name,
            "in": "query",
            "required": False,
            "schema": schema,
            "description": description,
        }

    token = "[^\\x00-\\x1f,]{0,24}"
    listed = {"type": "string", "pattern": f"^{token}(,{token}){{0,49}}$"}
    status_word = "(open|closed|baru|diproses|selesai|ditolak)"
    code_re = "[A-Za-z0-9-]{1,24}"
    common = [
        q("jurisdiction_id", {"type": "string", "enum": [city.city.key]}, "optional"),
        q("lang", {"type": "string", "enum": ["id", "en"]}, "language of service names"),
    ]
    list_params = [
        q(
            "service_request_id",
            {"type": "string", "pattern": f"^{code_re}(,{code_re}){{0,49}}$"},
            "comma-separated report codes",
        ),
        q("service_code", listed, "comma-separated category codes"),
        q("start_date", {"type": "string", "format": "date-time"}, "W3C date-time"),
        q("end_date", {"type": "string", "format": "date-time"}, "W3C date-time"),
        q(
            "status",
            {"type": "string", "pattern": f"^{status_word}(,{status_word}){{0,5}}$"},
            "open, closed, or baru/diproses/selesai/ditolak (comma-separated)",
        ),
        q("agency_responsible", listed, "extension: comma-separated OPD codes"),
        q("kecamatan", listed, "extension: comma-separated kecamatan codes"),
        q("page", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}, "extension"),
        q("page_size", {"type": "integer", "minimum": 1, "maximum": max_page_size}, "extension"),
        q("api_key", {"type": "string"}, "optional: shows non-public fields"),
    ]
    errors = {
        str(code): {
            "description": text,
            "content": {"application/json": {"schema": error}},
        }
        for code, text in (
            ("400", "bad input"),
            ("403", "bad or missing API key"),
            ("404", "not found"),
            (
                "413",
                f"body larger than {MAX_FORM // 2**20} MB "
                "(a multipart photo may add MAX_PHOTO_BYTES)",
            ),
        )
    }

    def ok(schema: dict[str, Any]) -> dict[str, Any]:
        return {"description": "OK", "content": {"application/json": {"schema": schema}}}

    form_props = {
        "api_key": {"type": "string"},
        "service_code": {"type": "string", "enum": [c.key for c in city.categories]},
        "description": {"type": "string", "minLength": 5, "maxLength": 2000},
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "long": {"type": "number", "minimum": -180, "maximum": 180},
        "address_string": {"type": "string"},
        "address_id": {"type": "string"},
        "account_id": {"type": "string"},
        "anonymous": {"type": "boolean"},
        "media_url": {"type": "string"},
    }
    paths: dict[str, Any] = {
        f"{PREFIX}/services.json": {
            "get": {
                "summary": "Service list (the city's report categories)",
                "parameters": common,
                "responses": {"200": ok({"type": "array", "items": service}), **errors},
            }
        },
        f"{PREFIX}/services/{{service_code}}.json": {
            "get": {
                "summary": "Service definition",
                "parameters": [
                    {
                        "name": "service_code",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{0,39}$"},
                    },
                    *common,
                ],
                "responses": {
                    "200": ok(
                        {
                            "type": "object",
                            "properties": {
                                "service_code": {"type": "string"},
                                "attributes": {"type": "array", "items": {"type": "object"}},
                            },
                        }
                    ),
                    **errors,
                },
            }
        },
        f"{PREFIX}/requests.json": {
            "get": {
                "summary": "Service requests (reports), newest first",
                "parameters": common + list_params,
                "responses": {"200": ok({"type": "array", "items": request_schema}), **errors},
            },
            "post": {
                "summary": "Create a service request (API key needed)",
                "parameters": common,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["service_code", "description"],
                                "properties": form_props,
                            }
                        },
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["service_code", "description"],
                                "properties": form_props,
                            }
                        },
                    },
                },
                "responses": {"200": ok(created), **errors},
            },
        },
        f"{PREFIX}/requests/{{service_request_id}}.json": {
            "get": {
                "summary": "One service request with its notes",
                "parameters": [
                    {
                        "name": "service_request_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "pattern": f"^{code_re}$"},
                    },
                    *common,
                    q("api_key", {"type": "string"}, "optional: shows non-public fields"),
                ],
                "responses": {"200": ok({"type": "array", "items": request_schema}), **errors},
            }
        },
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"Lapor Warga {city.city.name} – Open311 GeoReport v2",
            "version": "2.0",
            "description": "Every path also answers as .xml (the spec's XML form). "
            "POST and non-public fields need an API key (query api_key or X-Api-Key).",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "api_key": {"type": "apiKey", "in": "query", "name": "api_key"},
                "api_key_header": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
            }
        },
    }
