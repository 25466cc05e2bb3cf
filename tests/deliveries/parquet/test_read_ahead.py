"""The build reads the next hour while it writes this one: same items, same errors, bounded."""

import threading

import pytest

from deliveries.parquet.read_ahead import read_ahead


def counting(items, log):
    """A generator that logs when it starts reading each item, which thread reads it, and closing."""
    try:
        for item in items:
            log.append(("read", item, threading.current_thread().name))
            yield item
    finally:
        log.append(("closed", None, threading.current_thread().name))


def test_items_arrive_in_order_and_are_read_in_another_thread():
    log = []
    assert list(read_ahead(counting(range(5), log))) == [0, 1, 2, 3, 4]
    readers = {name for event, _, name in log}
    assert readers == {"read-ahead"}
    assert log[-1][0] == "closed"


def test_the_reader_is_never_more_than_one_item_ahead():
    log = []
    items = read_ahead(counting(range(10), log))
    for consumed, item in enumerate(items, start=1):
        assert item == consumed - 1
        threading.Event().wait(0.01)  # time for a reader that would run further ahead to do so
        started = sum(1 for event, *_ in log if event == "read")
        assert started <= consumed + 1


def test_an_error_of_the_reader_is_raised_where_its_item_would_have_been():
    def failing():
        yield "first"
        raise ValueError("hour 01 is broken")

    items = read_ahead(failing())
    assert next(items) == "first"
    with pytest.raises(ValueError, match="hour 01 is broken"):
        next(items)
    assert not any(thread.name == "read-ahead" for thread in threading.enumerate())


def test_a_consumer_that_stops_early_stops_the_reader_and_closes_the_source():
    log = []
    items = read_ahead(counting(range(100), log))
    assert next(items) == 0
    items.close()
    assert ("closed", None, "read-ahead") in log
    assert sum(1 for event, *_ in log if event == "read") <= 2
    assert not any(thread.name == "read-ahead" for thread in threading.enumerate())


def test_an_empty_source_ends_at_once():
    assert list(read_ahead(iter(()))) == []
