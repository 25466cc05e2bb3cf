"""One hour ahead: the archive read in a thread of its own while the build writes.

Reading an hour is gunzip and Arrow's JSON reader, writing it is Arrow's Parquet encoder and zstd:
C code on both sides that lets go of the GIL. Run one after the other, a day keeps one core busy
and the second mostly idle; with the next hour read while this one is written, both work.

Memory stays bounded by design, not by a queue size: the reader starts on the next item only once
the consumer has taken the previous one, so at most two hours are held (the one being written and
the one being read), whatever the speed of either side.
"""

import threading

_END = object()


def read_ahead(items):
    """Iterate ``items`` (an iterator, run in another thread) one item ahead of the consumer.

    What it raises is raised here, in the consumer, at the point it would have been. If the
    consumer stops early (an error, ``break``), the reader stops before its next item and ``items``
    is closed in the reader's thread."""
    taken = threading.Semaphore(0)  # the reader may go on to the next item: this one was taken
    ready = threading.Semaphore(0)  # an item (or the end, or an error) is waiting in ``slot``
    stop = threading.Event()
    slot = []

    def read():
        try:
            for item in items:
                slot.append(item)
                ready.release()
                taken.acquire()
                if stop.is_set():
                    return
            slot.append(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            slot.append(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()
        ready.release()

    thread = threading.Thread(target=read, name="read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            ready.acquire()
            item = slot.pop()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            taken.release()  # the reader goes on with the next item while this one is used
            yield item
    finally:
        stop.set()
        taken.release()
        thread.join()
