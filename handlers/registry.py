"""Builds the command/step table from every handler module."""

from __future__ import annotations

from handlers import broadcast, citizen, feedback, officer, paging, subscription
from handlers.core import Registry

MODULES = [citizen, officer, feedback, subscription, broadcast, paging]


def build_registry() -> Registry:
    reg = Registry()
    for module in MODULES:
        module.register(reg)
    return reg
