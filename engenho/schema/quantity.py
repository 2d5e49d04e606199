"""Kubernetes resource quantities (``500m``, ``1Gi``, ``1e3``), parsed and compared exactly.

Follows apimachinery's ``resource.Quantity``: a value is held as an exact integer count of
nano-units (10^-9), so comparison and arithmetic never touch floating point; values finer
than a nano-unit round up, away from zero, as upstream does. Each quantity remembers its
suffix family (decimal SI, binary SI or decimal exponent) for :meth:`Quantity.canonical` and
the JSON value it was parsed from (:attr:`Quantity.wire`), so objects round-trip exactly as
clients sent them.

No well-kept standalone parser exists on PyPI (the official client's ``parse_quantity``
pulls in the whole client and has no canonical form), hence this small, property-tested one.
"""

from __future__ import annotations

import enum
import functools
import re
from fractions import Fraction
from typing import Any

from engenho.schema.errors import QuantityError

__all__ = ["Quantity", "QuantityFormat", "is_quantity"]

_NANO = 10**9
# Upstream has no bound on the exponent; a huge one would make us build enormous integers.
_MAX_EXPONENT = 1000
_PATTERN = re.compile(
    r"(?P<sign>[+-]?)(?P<int>[0-9]*)(?:\.(?P<frac>[0-9]*))?"
    r"(?P<suffix>|[numkMGTPE]|[KMGTPE]i|[eE][+-]?[0-9]+)"
)
_DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_DECIMAL_BY_EXPONENT = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_BINARY_BY_POWER = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


class QuantityFormat(enum.Enum):
    """The suffix family a quantity was written in; it decides the canonical spelling."""

    DECIMAL_SI = "DecimalSI"
    BINARY_SI = "BinarySI"
    DECIMAL_EXPONENT = "DecimalExponent"


def is_quantity(value: object) -> bool:
    """True when ``value`` (a JSON string or number) parses as a quantity."""
    if type(value) is str:
        return _parse_text(value) is not None
    return type(value) in (int, float)


@functools.total_ordering
class Quantity:
    """An exact quantity; equality, ordering and hashing compare values, not spellings."""

    __slots__ = ("_wire", "format", "nanos")

    nanos: int
    format: QuantityFormat
    _wire: str | int | float

    def __init__(self, nanos: int, format: QuantityFormat, wire: str | int | float = "") -> None:
        self.nanos = nanos
        self.format = format
        self._wire = wire if wire != "" else _canonical(nanos, format)

    @classmethod
    def parse(cls, text: str) -> Quantity:
        """Parse a quantity string; raise :class:`QuantityError` when it is malformed."""
        parsed = _parse_text(text)
        if parsed is None:
            raise QuantityError(f"quantities must match the regular expression {_REGEX_TEXT!r}")
        return parsed

    @classmethod
    def from_json(cls, value: Any) -> Quantity:
        """Parse a JSON value: a string, or a number (upstream accepts ``cpu: 1``)."""
        if type(value) is str:
            return cls.parse(value)
        if type(value) in (int, float):
            parsed = _parse_text(repr(value))
            if parsed is not None:
                return Quantity(parsed.nanos, parsed.format, value)
        raise QuantityError(f"a quantity must be a string or a number, not {value!r}")

    @classmethod
    def from_fraction(
        cls,
        value: Fraction | int,
        format: QuantityFormat = QuantityFormat.DECIMAL_SI,
    ) -> Quantity:
        """Build a quantity from an exact value, rounding finer than nano up like the parser."""
        return cls(_round_up_nanos(Fraction(value) * _NANO), format)

    @property
    def wire(self) -> str | int | float:
        """The JSON value this quantity was read from (its canonical string when built)."""
        return self._wire

    def canonical(self) -> str:
        """The upstream canonical spelling: ``0.5`` is ``500m``, ``1.5Gi`` is ``1536Mi``."""
        return _canonical(self.nanos, self.format)

    def as_fraction(self) -> Fraction:
        return Fraction(self.nanos, _NANO)

    def value(self) -> int:
        """The value in whole units, rounded up (upstream ``Value()``)."""
        return -((-self.nanos) // _NANO)

    def milli_value(self) -> int:
        """The value in thousandths, rounded up (upstream ``MilliValue()``)."""
        return -((-self.nanos) // 10**6)

    def __str__(self) -> str:
        return self.canonical()

    def __repr__(self) -> str:
        return f"Quantity({self.canonical()!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Quantity):
            return self.nanos == other.nanos
        return NotImplemented

    def __lt__(self, other: Quantity) -> bool:
        if isinstance(other, Quantity):
            return self.nanos < other.nanos
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.nanos)

    def __add__(self, other: Quantity) -> Quantity:
        return Quantity(self.nanos + other.nanos, self.format)

    def __sub__(self, other: Quantity) -> Quantity:
        return Quantity(self.nanos - other.nanos, self.format)

    def __neg__(self) -> Quantity:
        return Quantity(-self.nanos, self.format)

    def __bool__(self) -> bool:
        return self.nanos != 0


_REGEX_TEXT = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


@functools.lru_cache(maxsize=4096)
def _parse_text(text: str) -> Quantity | None:
    match = _PATTERN.fullmatch(text)
    if match is None:
        return None
    integer, fraction = match["int"], match["frac"] or ""
    if not integer and not fraction:
        return None
    mantissa = int(integer + fraction or "0")
    suffix = match["suffix"]
    if suffix in _BINARY_SUFFIXES:
        # mantissa * 2^power / 10^len(fraction), in nanos
        exact = Fraction(mantissa * (2 ** _BINARY_SUFFIXES[suffix]) * _NANO, 10 ** len(fraction))
        format_ = QuantityFormat.BINARY_SI
    else:
        if suffix in _DECIMAL_SUFFIXES:
            exponent = _DECIMAL_SUFFIXES[suffix]
            format_ = QuantityFormat.DECIMAL_SI
        else:
            exponent = int(suffix[1:])
            format_ = QuantityFormat.DECIMAL_EXPONENT
        if exponent > _MAX_EXPONENT:
            return None
        shift = 9 + max(exponent, -_MAX_EXPONENT) - len(fraction)
        exact = Fraction(mantissa * 10**shift) if shift >= 0 else Fraction(mantissa, 10**-shift)
    nanos = _round_up_nanos(exact)
    if match["sign"] == "-":
        nanos = -nanos
    return Quantity(nanos, format_, text)


def _round_up_nanos(exact: Fraction) -> int:
    """Round a nano count away from zero, as upstream rounds sub-nano values up."""
    magnitude = abs(exact)
    whole = -((-magnitude.numerator) // magnitude.denominator)
    return whole if exact >= 0 else -whole


def _canonical(nanos: int, format_: QuantityFormat) -> str:
    if nanos == 0:
        return "0"
    sign = "-" if nanos < 0 else ""
    magnitude = abs(nanos)
    if format_ is QuantityFormat.BINARY_SI and (magnitude < 1024 * _NANO or magnitude % _NANO != 0):
        # Upstream avoids rounding (and confusion) by writing these in decimal.
        format_ = QuantityFormat.DECIMAL_SI
    if format_ is QuantityFormat.BINARY_SI:
        units, power = magnitude // _NANO, 0
        while units % 1024 == 0 and power < len(_BINARY_BY_POWER) - 1:
            units //= 1024
            power += 1
        return f"{sign}{units}{_BINARY_BY_POWER[power]}"
    mantissa, exponent = magnitude, -9
    while mantissa % 10 == 0:
        mantissa //= 10
        exponent += 1
    while exponent % 3:
        mantissa *= 10
        exponent -= 1
    if format_ is QuantityFormat.DECIMAL_EXPONENT:
        return f"{sign}{mantissa}" + (f"e{exponent}" if exponent else "")
    suffix = _DECIMAL_BY_EXPONENT.get(exponent)
    if suffix is None:
        # Beyond exa, upstream has no SI suffix; an exponent keeps the value exact.
        return f"{sign}{mantissa}e{exponent}"
    return f"{sign}{mantissa}{suffix}"
