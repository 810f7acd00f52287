"""Argument checks and the event-loop helper shared by the API's modules."""

import asyncio
import concurrent.futures


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(name, value, low, *, optional=False):
    if optional and value is None:
        return None
    if not _is_int(value) or value < low:
        what = "a positive integer" if low == 1 else f"an integer of at least {low}"
        raise ValueError(f"{name} must be {what}{' or None' if optional else ''}, not {value!r}")
    return value


def _run(coroutine):
    """Run ``coroutine`` to its end: with :func:`asyncio.run`, or in a worker thread with its own event
    loop when this thread already runs one (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
