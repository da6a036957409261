"""The order sources that land files in the landing zone."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LandingSource:
    name: str
    prefix: str  # landing-zone folder the source drops its exports into
    description: str


ORDER_SOURCES: tuple[LandingSource, ...] = (
    LandingSource("pos", "landing/orders/pos/", "Point-of-sale exports from physical stores (CSV, daily)."),
    LandingSource("web", "landing/orders/web/", "E-commerce order exports (CSV, daily)."),
)
