"""The code the tier page offers to copy: check a download and load it with pandas, or query a
file in place over HTTP with pandas (fsspec), Polars or DuckDB. docs/api.md shows the same text,
and the tests run it against a live server."""

from .. import storage
from .downloads import DAILY, MTD
from .links import file_links

QUERY_COLUMNS = ("symbol", "snapshot_ts")
QUERY_SYMBOL = "BTC"


def snippet_for(listing):
    """Copy-paste code that checks a downloaded file's SHA-256 and loads it with pandas: the
    newest day's (else the month bundle's) name and digest filled in."""
    newest = listing.daily[0] if listing.daily else listing.mtd
    filename = newest.download_filename if newest else storage.download_name(listing.tier, "daily", "YYYY-MM-DD")
    sha = newest.sha256 if newest else "<sha256 from this page or the manifest>"
    return (
        "import hashlib\n"
        "import pandas as pd\n\n"
        f'path = "{filename}"\n'
        f'expected = "{sha}"\n\n'
        "digest = hashlib.sha256()\n"
        'with open(path, "rb") as fh:\n'
        '    for block in iter(lambda: fh.read(1 << 20), b""):\n'
        "        digest.update(block)\n"
        'assert digest.hexdigest() == expected, "checksum mismatch: download again"\n\n'
        "df = pd.read_parquet(path)\n"
        "print(df.shape)\n"
        "print(df.dtypes)\n"
    )


def query_snippets(url):
    """Copy-paste code that reads a file in place over HTTP (footer and needed column chunks only)
    from its token-checked ``url``: pandas through fsspec, Polars, and DuckDB (needs httpfs).
    docs/api.md shows the same text with a placeholder URL, and the tests run it."""
    columns = ", ".join(f'"{name}"' for name in QUERY_COLUMNS)
    pandas = (
        "import fsspec\n"
        "import pandas as pd\n\n"
        f'url = "{url}"  # your link: keep it private\n\n'
        "# Range reads over HTTP: the Parquet footer, then only the column chunks asked for\n"
        "with fsspec.open(url, block_size=64 * 1024) as f:\n"
        f"    df = pd.read_parquet(f, columns=[{columns}])\n"
        "print(df.head())\n"
    )
    polars = (
        "import polars as pl\n\n"
        f'url = "{url}"  # your link: keep it private\n\n'
        "# Reads the footer, then the row groups and columns the query needs\n"
        f'df = pl.scan_parquet(url).filter(pl.col("symbol") == "{QUERY_SYMBOL}").select({columns}).collect()\n'
        "print(df)\n"
    )
    duckdb = (
        "-- DuckDB: needs its httpfs extension (INSTALL httpfs; LOAD httpfs;)\n"
        "SELECT symbol, count(*) AS rows\n"
        f"FROM read_parquet('{url}')\n"
        "GROUP BY symbol ORDER BY rows DESC;\n"
    )
    return {"pandas": pandas, "polars": polars, "duckdb": duckdb}


def query_target(tier, token, listing):
    """The file the page's query snippets read in place: the month bundle (the big one), else the
    newest day; its absolute token-checked URL, which answers HEAD and Range."""
    if listing.mtd is not None:
        kind, label = MTD, listing.mtd.month_label
    elif listing.daily:
        kind, label = DAILY, listing.daily[0].date.isoformat()
    else:
        return None
    url = file_links(tier, token, kind, label, absolute=True)["url"]
    return {"kind": kind, "label": label, "url": url, "snippets": query_snippets(url)}
