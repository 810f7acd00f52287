"""The argument types every ``lowbit`` command shares.

Each is an ``argparse`` ``type``: it turns the text of an option into a value or raises
:class:`argparse.ArgumentTypeError`, which argparse prints with the option's name and exit code 2, e.g.
``lowbit run: error: argument --limit: invalid value '0': expected a positive integer``. The messages say
what is allowed and name no function of lowbit. Standard library only.
"""

import argparse

__all__ = ["integer", "positive_int", "non_negative_int", "int_from", "positive_float", "widths"]


def _invalid(text, expected):
    return argparse.ArgumentTypeError(f"invalid value {text!r}: expected {expected}")


def _int(text, expected):
    try:
        return int(text)
    except ValueError:
        raise _invalid(text, expected) from None


def integer(text):
    """Any integer (a seed)."""
    return _int(text, "an integer")


def positive_int(text):
    """An integer of at least 1 (a count of images, epochs, threads...)."""
    value = _int(text, "a positive integer")
    if value < 1:
        raise _invalid(text, "a positive integer")
    return value


def non_negative_int(text):
    """An integer of at least 0 (resends, optional epochs, a placer seed)."""
    value = _int(text, "a non-negative integer")
    if value < 0:
        raise _invalid(text, "a non-negative integer")
    return value


def int_from(low, high=None):
    """The type of an integer in ``low .. high`` (``high=None``: at least ``low``)."""
    expected = f"an integer of at least {low}" if high is None else f"an integer from {low} to {high}"

    def parse(text):
        value = _int(text, expected)
        if value < low or (high is not None and value > high):
            raise _invalid(text, expected)
        return value

    parse.__name__ = expected
    return parse


def positive_float(text):
    """A number greater than 0 (seconds, a learning rate)."""
    expected = "a positive number"
    try:
        value = float(text)
    except ValueError:
        raise _invalid(text, expected) from None
    if not value > 0 or value == float("inf"):
        raise _invalid(text, expected)
    return value


def widths(text):
    """Comma-separated positive layer widths such as ``256,256``."""
    expected = "comma-separated positive widths such as 256,256"
    try:
        values = tuple(int(w) for w in text.split(",") if w.strip())
    except ValueError:
        raise _invalid(text, expected) from None
    if not values or any(w < 1 for w in values):
        raise _invalid(text, expected)
    return values
