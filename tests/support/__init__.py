"""What the tests share besides fixtures (those are in tests/conftest.py), by what it helps with.

- ``factories``: published days and bundles without the archive build (real Parquet, the real
  publish path), and tables of a tier's schema.
- ``scenarios``: the published states the web and operator tests start from.
- ``tokens``: the rotation week the token tests are set in; issuing tokens and reading them back.
- ``databases``: scratch PostgreSQL databases, the database child processes share, an on-disk
  copy for threads, losing the build lock.
- ``processes``: child processes as cron and the operator start them; a build killed while it
  holds the lock.
- ``servers``: free ports, moto buckets, plain HTTP fetches, gunicorn as deployed (with TLS).
- ``browser``: the headless Chromium the browser tests drive.
"""
