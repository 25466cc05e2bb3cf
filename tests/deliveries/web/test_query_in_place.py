"""Query in place: readers that fetch a Parquet file's footer and only the column chunks they need,
over the token-checked links, on a live server with local storage and with S3 (moto) through the
302 to a presigned URL. Bytes are counted where they leave the server, not by the client.

pandas reads through fsspec (HTTP range reads, aiohttp) and Polars with its own HTTP reader; the
documented snippets (docs/api.md, the page) are the code that runs here.
"""

import hashlib
import io
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import time_machine
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from django.conf import settings
from django.db import connection
from django.utils import timezone

from deliveries import mtd, storage
from deliveries.models import DownloadCount
from deliveries.tiers import schema_for
from deliveries.web.snippets import query_snippets
from tests.support.factories import daily_manifest, publish_daily
from tests.support.tokens import issue_current

pytestmark = pytest.mark.django_db(transaction=True)

DOCS = Path(settings.BASE_DIR) / "docs" / "api.md"
DOC_URL = "https://SITE/downloads/tier3/mtd/2026-11.parquet?t=TOKEN"
SYMBOLS = np.array(["BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "AVAX", "LINK"])
ROWS_A_DAY = 12_000


# --- A multi-MB month bundle ---------------------------------------------------------------------


def wide_day(day, rows, seed):
    """A tier 1 day of ``rows`` rows, its numbers random (so they do not compress away)."""
    rng = np.random.default_rng(seed)
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    columns = []
    for field in schema_for("tier1"):
        if field.name == "symbol":
            columns.append(pa.array(SYMBOLS[rng.integers(0, len(SYMBOLS), rows)]))
        elif field.name == "snapshot_ts" or field.type == pa.string():
            stamps = [start + timedelta(milliseconds=int(ms)) for ms in np.sort(rng.integers(0, 86_400_000, rows))]
            columns.append(pa.array([s.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z" for s in stamps]))
        elif pa.types.is_floating(field.type):
            columns.append(pa.array(rng.normal(50, 20, rows)))
        elif pa.types.is_integer(field.type):
            columns.append(pa.array(rng.integers(0, 10**9, rows)))
        else:
            columns.append(pa.array(rng.random(rows) < 0.3))
    return pa.Table.from_arrays(columns, schema=schema_for("tier1"))


@pytest.fixture
def bundle(tmp_path):
    """Three published tier 1 days and their month bundle (~4 MB, one row group a day)."""
    today = timezone.now().date()
    days = [today - timedelta(days=back) for back in (3, 2, 1)]
    tables = []
    for index, day in enumerate(days):
        table = wide_day(day, ROWS_A_DAY, seed=index)
        path = tmp_path / f"{day}.parquet"
        pq.write_table(table, path, compression="zstd")
        publish_daily("tier1", day, path, daily_manifest("tier1", day, path, table.num_rows), input_fingerprint="q")
        tables.append(table)
    month = days[-1].replace(day=1)
    result = mtd.build_month("tier1", month, today=today)
    assert result.outcome == "built", result.message
    from deliveries.models import MonthBundle

    record = MonthBundle.objects.get(tier="tier1", month=month)
    data = storage.read_bytes(record.key)
    assert len(data) > 3_000_000  # multi-MB
    expected = pq.read_table(io.BytesIO(data))
    assert expected.equals(pa.concat_tables(tables))
    return {"record": record, "data": data, "table": expected, "token": issue_current("tier1")}


def bundle_url(base, bundle):
    return f"{base}/downloads/tier1/mtd/{bundle['record'].month_label}.parquet?t={bundle['token']}"


# --- Counting the bytes that leave a server ------------------------------------------------------


class ByteCounter:
    """WSGI middleware: each request's method, path, Range header, status and body bytes sent."""

    def __init__(self, app):
        self.app = app
        self.requests = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        record = {
            "method": environ["REQUEST_METHOD"],
            "path": environ.get("PATH_INFO", ""),
            "range": environ.get("HTTP_RANGE"),
            "status": None,
            "bytes": 0,
        }
        with self.lock:
            self.requests.append(record)

        def start(status, headers, exc_info=None):
            record["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info)

        result = self.app(environ, start)
        try:
            for chunk in result:
                record["bytes"] += len(chunk)
                yield chunk
        finally:
            if hasattr(result, "close"):
                result.close()

    def sent(self, path_part=".parquet"):
        return sum(r["bytes"] for r in self.requests if path_part in r["path"])

    def reset(self):
        with self.lock:
            self.requests.clear()


@pytest.fixture
def site(live_server, settings):
    """The live server, its responses counted. Readers keep their HTTP connections open (so the
    server's request threads live on): those threads close their database connections after each
    request, or PostgreSQL's test database could not be dropped at the end."""
    settings.SITE_URL = live_server.url
    httpd = live_server.thread.httpd
    original = httpd.get_app()
    counter = ByteCounter(original)
    httpd.set_app(counter)
    database = connection.settings_dict  # shared by every thread's connection
    max_age = database.get("CONN_MAX_AGE")
    if connection.vendor == "postgresql":  # SQLite's test database is the test's own connection
        database["CONN_MAX_AGE"] = 0
    yield live_server.url, counter
    database["CONN_MAX_AGE"] = max_age
    httpd.set_app(original)


@pytest.fixture
def counted_s3(s3_storage, settings):
    """S3 as the ``s3_storage`` fixture sets it up (moto, same buckets), reached through a second
    moto front whose responses are counted: presigned URLs point there."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    counter = ByteCounter(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, counter, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    options = {**settings.STORAGES["deliveries"]["OPTIONS"], "endpoint_url": endpoint}
    settings.STORAGES = {**settings.STORAGES, "deliveries": {**settings.STORAGES["deliveries"], "OPTIONS": options}}
    settings.R2_ENDPOINT = endpoint
    yield counter
    server.shutdown()
    thread.join()


# --- The documented snippets ---------------------------------------------------------------------


def doc_block(marker):
    """The fenced block after ``<!-- query-MARKER ... -->`` in docs/api.md."""
    text = DOCS.read_text()
    start = text.index(f"<!-- query-{marker}")
    start = text.index("\n", text.index("```", start)) + 1
    return text[start : text.index("\n```", start) + 1]


def run_snippet(code, url):
    """Run a Python snippet as a subscriber would paste it, with their URL; its namespace back."""
    namespace = {"print": lambda *args, **kwargs: None}
    exec(compile(code.replace(DOC_URL, url), "<snippet>", "exec"), namespace)  # noqa: S102
    return namespace


def test_the_docs_show_the_pages_snippets():
    snippets = query_snippets(DOC_URL)
    assert doc_block("pandas") == snippets["pandas"]
    assert doc_block("polars") == snippets["polars"]
    assert doc_block("duckdb") == snippets["duckdb"]
    assert "httpfs" in snippets["duckdb"]


# --- Local storage --------------------------------------------------------------------------------


def fetch(url, method="GET", headers=None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def test_head_and_range_answer_on_the_token_checked_link(site, bundle):
    base, counter = site
    url = bundle_url(base, bundle)
    data = bundle["data"]
    status, headers, body = fetch(url, "HEAD")
    assert (status, body) == (200, b"")
    assert int(headers["Content-Length"]) == len(data)
    assert headers["Accept-Ranges"] == "bytes"
    assert headers["ETag"].startswith('"')
    assert headers["Referrer-Policy"] == "no-referrer" and "no-store" in headers["Cache-Control"]

    status, headers, body = fetch(url, headers={"Range": "bytes=-8"})
    assert (status, body) == (206, data[-8:])  # the footer's length and PAR1
    assert headers["Content-Range"] == f"bytes {len(data) - 8}-{len(data) - 1}/{len(data)}"
    assert headers["Referrer-Policy"] == "no-referrer" and "no-store" in headers["Cache-Control"]
    status, _, body = fetch(url, headers={"Range": "bytes=4-99", "If-Range": headers["ETag"]})
    assert (status, body) == (206, data[4:100])
    assert not DownloadCount.objects.exists()  # probes and range reads are not downloads


def test_head_with_a_bad_token_is_refused(site, bundle):
    base, _ = site
    with pytest.raises(urllib.error.HTTPError) as refused:
        fetch(bundle_url(base, {**bundle, "token": "A" * 43}), "HEAD")
    assert refused.value.code == 403


def one_column_with_pandas(url):
    import fsspec

    with fsspec.open(url, block_size=64 * 1024) as f:
        return pd.read_parquet(f, columns=["symbol"])


def test_pandas_reads_one_column_in_place_and_the_whole_file_equals_the_download(site, bundle):
    base, counter = site
    url = bundle_url(base, bundle)
    size = len(bundle["data"])
    frame = one_column_with_pandas(url)
    assert frame["symbol"].tolist() == bundle["table"].column("symbol").to_pylist()
    assert 0 < counter.sent() < 0.2 * size, counter.requests
    assert any(r["method"] == "HEAD" for r in counter.requests)  # fsspec probes the size first
    assert all(r["status"] in (200, 206) for r in counter.requests if r["method"] == "GET")

    counter.reset()
    namespace = run_snippet(query_snippets(DOC_URL)["pandas"], url)
    assert list(namespace["df"].columns) == ["symbol", "snapshot_ts"]
    assert len(namespace["df"]) == bundle["table"].num_rows
    assert counter.sent() < 0.2 * size

    import fsspec

    with fsspec.open(url, block_size=64 * 1024) as f:
        whole = pd.read_parquet(f)
    pd.testing.assert_frame_equal(whole, pd.read_parquet(io.BytesIO(bundle["data"])))
    downloaded = fetch(url)[2]
    assert downloaded == bundle["data"]
    assert hashlib.sha256(downloaded).hexdigest() == bundle["record"].sha256


def test_polars_reads_one_column_in_place_and_the_whole_file_equals_the_download(site, bundle):
    base, counter = site
    url = bundle_url(base, bundle)
    size = len(bundle["data"])
    frame = pl.scan_parquet(url).select("symbol").collect()
    assert frame["symbol"].to_list() == bundle["table"].column("symbol").to_pylist()
    assert 0 < counter.sent() < 0.2 * size, counter.requests

    counter.reset()
    namespace = run_snippet(query_snippets(DOC_URL)["polars"], url)
    symbols = bundle["table"].column("symbol").to_pylist()
    assert namespace["df"].columns == ["symbol", "snapshot_ts"]
    assert namespace["df"]["symbol"].to_list() == ["BTC"] * symbols.count("BTC")
    assert counter.sent() < 0.2 * size

    whole = pl.read_parquet(url)
    assert whole.equals(pl.read_parquet(io.BytesIO(bundle["data"])))
    assert whole.height == bundle["table"].num_rows


# --- S3 (moto) through the redirect ---------------------------------------------------------------


@pytest.mark.s3
def test_on_s3_pandas_and_polars_read_one_column_through_the_redirect(site, counted_s3, bundle):
    base, django_counter = site
    url = bundle_url(base, bundle)
    size = len(bundle["data"])
    counted_s3.reset()  # what building the bundle read and wrote

    frame = one_column_with_pandas(url)
    assert frame["symbol"].tolist() == bundle["table"].column("symbol").to_pylist()
    assert 0 < counted_s3.sent("/") < 0.2 * size, counted_s3.requests
    assert django_counter.sent() == 0  # Django only redirects; storage sends the bytes
    assert any(r["method"] == "HEAD" and r["status"] == 200 for r in counted_s3.requests)  # signed for HEAD

    counted_s3.reset()
    polars_frame = pl.scan_parquet(url).select("symbol").collect()
    assert polars_frame["symbol"].to_list() == frame["symbol"].tolist()
    assert 0 < counted_s3.sent("/") < 0.2 * size, counted_s3.requests

    import fsspec

    with fsspec.open(url, block_size=64 * 1024) as f:
        whole = pd.read_parquet(f)
    pd.testing.assert_frame_equal(whole, pd.read_parquet(io.BytesIO(bundle["data"])))
    assert pl.read_parquet(url).equals(pl.read_parquet(io.BytesIO(bundle["data"])))
    assert not DownloadCount.objects.exists()  # every request carried a Range not from byte 0, or was a HEAD


@pytest.mark.s3
def test_on_s3_a_head_is_redirected_to_a_url_signed_for_head(client, s3_storage, bundle):
    path = bundle_url("", bundle)
    head = client.head(path)
    get = client.get(path)
    assert head.status_code == get.status_code == 302
    assert head["Referrer-Policy"] == "no-referrer" and "no-store" in head["Cache-Control"]
    assert signed_method(head["Location"]) == "HEAD"
    assert signed_method(get["Location"]) == "GET"
    status, headers, body = fetch(head["Location"], "HEAD")
    assert (status, body, int(headers["Content-Length"])) == (200, b"", len(bundle["data"]))


def signed_method(url):
    """The HTTP method a presigned SigV4 URL was signed for, found offline with botocore's own
    signer: the URL's signature is recomputed for HEAD and for GET at the URL's own time."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    signature = query.pop("X-Amz-Signature")
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    scope = query["X-Amz-Credential"].split("/")
    credentials = Credentials(access_key=scope[0], secret_key=settings.STORAGES["deliveries"]["OPTIONS"]["secret_key"])
    unsigned = {k: v for k, v in query.items() if not k.startswith("X-Amz-") or k == "X-Amz-Security-Token"}
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    found = []
    for method in ("HEAD", "GET"):
        request = AWSRequest(method=method, url=base, params=unsigned)
        with time_machine.travel(signed_at, tick=False):
            S3SigV4QueryAuth(credentials, "s3", scope[2], expires=int(query["X-Amz-Expires"])).add_auth(request)
        resigned = dict(parse_qsl(urlsplit(request.url).query))["X-Amz-Signature"]
        if resigned == signature:
            found.append(method)
    assert len(found) == 1, found
    return found[0]


def test_the_offline_signature_check_tells_head_from_get(s3_storage):
    """The check itself: a URL signed for one method matches that method and not the other."""
    client = storage.backend().bucket.meta.client
    params = {"Bucket": s3_storage.bucket, "Key": "tier1/mtd/2026-11/data.parquet"}
    assert signed_method(client.generate_presigned_url("head_object", Params=params, ExpiresIn=60)) == "HEAD"
    assert signed_method(client.generate_presigned_url("get_object", Params=params, ExpiresIn=60)) == "GET"
