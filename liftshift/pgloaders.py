"""Loading PostgreSQL values psycopg's own loaders refuse: intervals printed with IntervalStyle
iso_8601 (as liftshift's sessions set it), and dates and timestamps Python cannot hold."""

import re
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Loader
from psycopg.types.datetime import DateLoader, TimestampLoader, TimestamptzLoader

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


class DateOrTextLoader(DateLoader):
    """A date, or PostgreSQL's text of one Python cannot hold (BC, past 9999, ±infinity)."""

    def load(self, data: Buffer) -> Any:
        """The date, or its text."""
        return _or_text(super().load, data)


class TimestampOrTextLoader(TimestampLoader):
    """A timestamp, or PostgreSQL's text of one Python cannot hold (BC, past 9999, ±infinity)."""

    def load(self, data: Buffer) -> Any:
        """The timestamp, or its text."""
        return _or_text(super().load, data)


class TimestamptzOrTextLoader(TimestamptzLoader):
    """A timestamptz, or PostgreSQL's text of one Python cannot hold (BC, past 9999, ±infinity)."""

    def load(self, data: Buffer) -> Any:
        """The timestamptz, or its text."""
        return _or_text(super().load, data)


def _or_text(load: Any, data: Buffer) -> date | datetime | str:
    try:
        return load(data)
    except psycopg.DataError:  # Python's years are 1-9999
        return bytes(data).decode()


LOADERS: dict[str, type[Loader]] = {
    "interval": IsoIntervalLoader, "date": DateOrTextLoader, "timestamp": TimestampOrTextLoader,
    "timestamptz": TimestamptzOrTextLoader,
}  # fmt: skip
