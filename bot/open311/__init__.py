"""Open311 GeoReport v2: the routes (`routes`), input parsing (`params`), answers (`render`)
and the OpenAPI document (`openapi`)."""

from bot.open311.openapi import openapi_document
from bot.open311.params import Open311Error, parse_datetime
from bot.open311.render import default_deadline
from bot.open311.routes import Open311

__all__ = ["Open311", "Open311Error", "default_deadline", "openapi_document", "parse_datetime"]
