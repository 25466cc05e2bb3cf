"""One leaf column's running figures over the record batches ``profile`` reads, by kind (number,
bool, timestamp, string), and the profile its manifest holds (``LeafProfile``)."""

import math
import struct
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

HISTOGRAM_BINS = 10
TOP_FREQUENCIES = 20
FREQUENCY_COLUMNS = frozenset({"symbol"})  # strings whose values are counted (bounded: ~300 symbols)
TIMESTAMP_SUFFIXES = ("_ts", "_utc", "_at")


def is_timestamp(path):
    """A string leaf that holds ISO 8601 times, by the contract's naming (``ts``, ``*_ts``, ``*_utc``,
    ``*_at``)."""
    name = path.rsplit(".", 1)[-1].removesuffix("[]")
    return name == "ts" or name.endswith(TIMESTAMP_SUFFIXES)


def kind_of(path, type_):
    if pa.types.is_boolean(type_):
        return "bool"
    if pa.types.is_integer(type_) or pa.types.is_floating(type_):
        return "number"
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        return "timestamp" if is_timestamp(path) else "string"
    return "other"


# --- Numbers as JSON -------------------------------------------------------------------------------


def _short(value):
    """A float to 6 significant digits (means, deviations, inner bin edges): enough to read."""
    return float(f"{value:.6g}")


def _plain(value):
    """A min or max as JSON: ints stay ints, floats stay exact."""
    return value.as_py() if isinstance(value, pa.Scalar) else value


def double(value):
    """A Python number as an Arrow double scalar, made from its 8 bytes. pyarrow converts a Python
    value (``pa.scalar``, a plain number handed to a compute function) through its pandas shim,
    which imports pandas the first time: about 40 MB more in every process that builds a day."""
    return pa.Array.from_buffers(pa.float64(), 1, [None, pa.py_buffer(struct.pack("=d", value))])[0]


# --- One leaf's running figures ------------------------------------------------------------------


class LeafProfile:
    """The running figures of one leaf over the batches read, and its profile at the end.

    A number column's histogram needs its range before it can count. ``hint`` is the range the
    footer's statistics give (binned as read, then checked against the range of the values); with
    ``keep`` the values are kept until the column is read whole; otherwise (or when the hint was
    wrong) ``needs_second_read`` is true and ``add_to_histogram`` is given the values again.
    """

    def __init__(self, path, type_, in_list, *, hint=None, keep=False):
        self.path, self.type, self.in_list = path, type_, in_list
        self.kind = kind_of(path, type_)
        self.count = self.nulls = 0
        self.lengths = None  # (min, max) list length, over non-null lists
        self.null_lists = 0
        # numbers: running n, mean and sum of squared deviations (Chan et al.), min, max
        self.n, self.mean, self.m2 = 0, 0.0, 0.0
        self.low = self.high = None
        self.non_finite = 0
        self.bins = [0] * HISTOGRAM_BINS
        self.hint = hint if self.kind == "number" else None
        self.kept = [] if keep and self.kind == "number" and hint is None else None
        self.binned = False
        self.true_count = 0
        self.frequencies = Counter() if path in FREQUENCY_COLUMNS else None

    def add(self, values, lengths=None):
        """Take in one batch of values (and the lengths of the lists they come from)."""
        self.count += len(values)
        self.nulls += values.null_count
        if lengths is not None:
            self.null_lists += lengths.null_count
            self._widen_lengths(pc.min_max(lengths))
        if self.kind == "number":
            finite, mean = self._finite(values)
            self._add_numbers(finite, mean)
            if self.hint is not None:
                self._bin(finite, *self.hint)
            elif self.kept is not None:
                self.kept.append(finite)
        elif self.kind == "bool":
            self.true_count += pc.sum(values).as_py() or 0
        elif self.kind == "timestamp":
            # ISO 8601 text of one format sorts as its times do: no parsing needed
            span = pc.min_max(values)
            self._widen(_plain(span["min"]), _plain(span["max"]))
        elif self.kind == "string":
            span = pc.min_max(pc.utf8_length(values))
            self._widen(_plain(span["min"]), _plain(span["max"]))
            if self.frequencies is not None:
                for item in pc.value_counts(values.drop_null()).to_pylist():
                    self.frequencies[item["values"]] += item["counts"]

    def finish_first_read(self):
        """The column has been read once: count its histogram if that is possible now."""
        if self.kind != "number":
            return
        if self.hint is not None and self.hint == (self.low, self.high):
            self.binned = True
        elif self.kept is not None:
            self.bins = [0] * HISTOGRAM_BINS
            for values in self.kept:
                self._bin(values, self.low, self.high)
            self.binned = True
        self.kept = None

    @property
    def needs_second_read(self):
        return self.kind == "number" and not self.binned and self.low is not None and self.low != self.high

    def add_to_histogram(self, values):
        """Bin a batch of the second read (the range is final)."""
        if self.hint is not None:  # the footer's range was not the values' own
            self.bins, self.hint = [0] * HISTOGRAM_BINS, None
        self._bin(self._finite(values, counted=True)[0], self.low, self.high)

    def _widen_lengths(self, span):
        low, high = _plain(span["min"]), _plain(span["max"])
        if low is None:
            return
        if self.lengths is None:
            self.lengths = (low, high)
        else:
            self.lengths = (min(self.lengths[0], low), max(self.lengths[1], high))

    def _widen(self, low, high):
        if low is None:
            return
        self.low = low if self.low is None else min(self.low, low)
        self.high = high if self.high is None else max(self.high, high)

    def _finite(self, values, *, counted=False):
        """(values, mean): the values without nulls, NaN and infinities (counted apart, unless
        ``counted`` already: JSON cannot hold them), and their mean (None without values). A finite
        mean means there is nothing to take out, so the usual case costs one pass, not three."""
        if values.null_count:
            values = values.drop_null()
        if not len(values):
            return values, None
        mean = pc.mean(values).as_py()
        if pa.types.is_floating(values.type) and not math.isfinite(mean):
            finite = pc.is_finite(values)
            kept = pc.sum(finite).as_py() or 0
            if kept != len(values):
                if not counted:
                    self.non_finite += len(values) - kept
                values = values.filter(finite)
                mean = pc.mean(values).as_py() if kept else None
        return values, mean

    def _add_numbers(self, values, mean):
        n = len(values)
        if n == 0:
            return
        span = pc.min_max(values)
        self._widen(_plain(span["min"]), _plain(span["max"]))
        m2 = pc.variance(values, ddof=0).as_py() * n
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def _bin(self, values, low, high):
        """Equal-width bins over [low, high]; the top edge belongs to the last bin."""
        if low is None or low == high or len(values) == 0 or not math.isfinite(high - low):
            return
        scale = HISTOGRAM_BINS / (high - low)
        if not pa.types.is_float64(values.type):
            values = pc.cast(values, pa.float64(), safe=False)  # an int64 beyond 2^53 bins by its nearest double
        offsets = pc.multiply(pc.subtract(values, double(low)), double(scale))
        index = pc.cast(offsets, pa.int64(), safe=False)  # offsets are >= 0: truncation is floor
        for item in pc.value_counts(index).to_pylist():
            self.bins[min(max(item["values"], 0), HISTOGRAM_BINS - 1)] += item["counts"]

    def result(self):
        out = {
            "type": str(self.type),
            "kind": self.kind,
            "count": self.count,
            "null_count": self.nulls,
            "null_proportion": round(self.nulls / self.count, 6) if self.count else 0.0,
        }
        if self.in_list:
            low, high = self.lengths or (None, None)
            out["list_length"] = {"min": low, "max": high}
            out["null_lists"] = self.null_lists
        if self.kind == "number":
            out.update(self._number_result())
        elif self.kind == "bool":
            out["true_count"] = self.true_count
        elif self.kind == "timestamp":
            out["min"], out["max"] = self.low, self.high
        elif self.kind == "string":
            out["length"] = {"min": self.low, "max": self.high}
            if self.frequencies is not None:
                ranked = sorted(self.frequencies.items(), key=lambda item: (-item[1], item[0]))
                out["distinct"] = len(self.frequencies)
                out["frequencies"] = [{"value": value, "count": n} for value, n in ranked[:TOP_FREQUENCIES]]
        return out

    def _number_result(self):
        out = {"min": self.low, "max": self.high, "mean": None, "std": None, "histogram": None}
        if self.non_finite:
            out["non_finite_count"] = self.non_finite
        if self.n == 0:
            return out
        out["mean"] = _short(self.mean)
        out["std"] = _short(math.sqrt(self.m2 / self.n))
        if self.low == self.high:
            out["histogram"] = {"edges": [self.low, self.high], "counts": [self.n]}
            return out
        width = (self.high - self.low) / HISTOGRAM_BINS
        inner = [_short(self.low + width * i) for i in range(1, HISTOGRAM_BINS)]
        out["histogram"] = {"edges": [self.low, *inner, self.high], "counts": list(self.bins)}
        return out
