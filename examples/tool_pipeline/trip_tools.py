"""The functions behind the tools in tools.yaml: offline stand-ins for real services.

Each is a plain (sync or async) function taking the tool's inputs as keyword
arguments; tools.yaml names them by import path (``trip_tools:geocode_online``).
"""

from __future__ import annotations

from typing import Any

import anyio

CITIES: dict[str, dict[str, Any]] = {
    "cairo": {"lat": 30.04, "lon": 31.24, "country": "EG", "population": 10_230_000, "tz": "Africa/Cairo"},
    "lisbon": {"lat": 38.72, "lon": -9.14, "country": "PT", "population": 545_000, "tz": "Europe/Lisbon"},
    "oslo": {"lat": 59.91, "lon": 10.75, "country": "NO", "population": 709_000, "tz": "Europe/Oslo"},
}
FORECASTS = {"EG": (34.5, "hot and dry"), "PT": (22.0, "sunny spells"), "NO": (4.5, "light snow")}
RATES = {"EG": ("EGP", 52.3), "PT": ("EUR", 1.0), "NO": ("NOK", 11.6)}
_calls: dict[str, int] = {}


async def geocode_online(city: str) -> dict[str, object]:
    """A geocoding API that never answers (the step's timeout gives up on it)."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


def geocode_offline(city: str) -> dict[str, object]:
    """A bundled gazetteer."""
    row = CITIES[city.lower()]
    return {"lat": row["lat"], "lon": row["lon"], "country": row["country"]}


async def forecast_mirror(lat: float, lon: float, country: str) -> dict[str, object]:
    """A slow mirror: loses the race and is cancelled."""
    await anyio.sleep_forever()
    raise AssertionError("unreachable")


async def forecast_primary(lat: float, lon: float, country: str) -> dict[str, object]:
    celsius, summary = FORECASTS[country]
    return {"celsius": celsius, "summary": summary}


def population(country: str, city: str) -> int:
    return int(CITIES[city.lower()]["population"])


def timezone(country: str, city: str) -> str:
    return str(CITIES[city.lower()]["tz"])


def exchange_rate(country: str) -> dict[str, object]:
    """A flaky service: the first call for each country fails; the retry succeeds."""
    _calls[country] = _calls.get(country, 0) + 1
    if _calls[country] == 1:
        raise ConnectionError("exchange service: connection reset")
    code, per_eur = RATES[country]
    return {"currency": code, "per_eur": per_eur}


def heat_advice(celsius: float) -> str:
    return f"{celsius:g} °C: carry water, avoid the midday sun"


def render_report(
    city: str, celsius: float, summary: str, population: int, timezone: str,
    currency: str, per_eur: float, advice: str = "",
) -> str:
    lines = [
        f"{city}: {summary}, {celsius:g} °C",
        f"  {population:,} people, time zone {timezone}",
        f"  1 EUR = {per_eur:g} {currency}",
    ]
    if advice:
        lines.append(f"  advice: {advice}")
    return "\n".join(lines)
