"""Reading PostgreSQL intervals printed with IntervalStyle iso_8601, as liftshift's sessions set it."""

import re
from datetime import timedelta
from decimal import Decimal

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Loader

_ISO_INTERVAL = re.compile(
    r"P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)D)?(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d+)?)S)?)?"
)


class IsoIntervalLoader(Loader):
    """Loads ISO 8601 interval text into a timedelta, as psycopg loads the postgres style.

    psycopg's own loader refuses IntervalStyle iso_8601. Like it, a year counts 365 days and a
    month 30.
    """

    def load(self, data: Buffer) -> timedelta:
        """The interval as a timedelta."""
        text = bytes(data).decode()
        found = _ISO_INTERVAL.fullmatch(text)
        if not found:
            raise psycopg.DataError(f"can't parse interval {text!r}")
        years, months, days, hours, minutes, seconds = (g or "0" for g in found.groups())
        micros = int(Decimal(seconds) * 1_000_000)
        return timedelta(
            days=365 * int(years) + 30 * int(months) + int(days),
            hours=int(hours), minutes=int(minutes), microseconds=micros,
        )  # fmt: skip
