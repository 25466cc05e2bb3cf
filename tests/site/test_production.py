"""The site as it runs in production, end to end over real HTTP.

gunicorn (with deploy/gunicorn.conf.py) on 127.0.0.1 with DEBUG off, a scratch PostgreSQL database
(always PostgreSQL, on both CI legs: that is what production runs) and the S3 backend on moto's
server. Requests carry ``X-Forwarded-Proto: https`` as the reverse proxy sets it, so the HTTPS
settings stay on exactly as deployed (SSL redirect, HSTS, secure cookies) and ``check --deploy``
is clean with no exception. Every step is a ``manage.py`` command in its own process, as cron and
the operator run them.
"""

import functools
import hashlib
import json
import re
import uuid

import pytest

from deliveries import sample
from tests.support.databases import scratch_postgres
from tests.support.processes import manage, production_env
from tests.support.servers import PROXY_HEADERS, create_bucket, free_port, gunicorn
from tests.support.servers import fetch as fetch_any

# Every request as the reverse proxy forwards it (unless a test drops the header), redirects not followed.
fetch = functools.partial(fetch_any, headers=PROXY_HEADERS, follow=False)


@pytest.fixture
def bucket(moto_server):
    return create_bucket(moto_server, "prod")[1]


@pytest.mark.s3
def test_production_like_site(tmp_path, moto_server, bucket, cron_monitor):
    monitor_url, pings = cron_monitor
    archive = tmp_path / "archive"
    days = [stats.day for stats in sample.write_archive(archive, 3)]
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    logs = tmp_path / "logs"
    logs.mkdir()
    ping_path = f"/{uuid.uuid4()}"

    with scratch_postgres("instrumetriq_prod") as database_url:
        env = production_env(
            ALLOWED_HOSTS="127.0.0.1,localhost",
            SITE_URL=f"https://127.0.0.1:{port}",  # what the proxy serves; gunicorn itself speaks http
            DATABASE_URL=database_url,
            STORAGE_BACKEND="s3",
            R2_ENDPOINT=moto_server,
            R2_ACCESS_KEY_ID="testing",
            R2_SECRET_ACCESS_KEY="testing",
            R2_BUCKET=bucket,
            ARCHIVE_ROOT=archive,
            VAR_DIR=tmp_path / "var",
            HEALTHCHECK_PING_URL=monitor_url + ping_path,
        )
        manage(env, "migrate", "--noinput")
        manage(env, "collectstatic", "--noinput")
        built = manage(env, "build_daily")
        assert "build_daily success" in built
        assert pings == [ping_path]  # the cron monitor heard of the good night (a failure pings .../fail)
        manage(env, "rotate_tokens", "--mode", "init")
        links = json.loads(manage(env, "patreon_links", "--format", "json"))
        tier1 = next(item for item in links["tiers"] if item["tier"] == "tier1")
        assert tier1["ok"] and tier1["current_url"].startswith(f"https://127.0.0.1:{port}/downloads/tier1?t=")
        token = tier1["current_url"].split("?t=", 1)[1]
        page_url = origin + tier1["current_url"].split(str(port), 1)[1]

        logs_to = ["--access-logfile", str(logs / "access.log"), "--error-logfile", str(logs / "error.log")]
        with gunicorn(env, port, logs / "gunicorn.out", *logs_to):
            # Without the proxy's header the request is plain http: redirected to https.
            status, headers, _ = fetch(f"{origin}/ping", headers={})
            assert status == 301 and headers["Location"] == f"https://127.0.0.1:{port}/ping"
            status, headers, _ = fetch(page_url, headers={})  # a token URL's redirect sends no Referer on
            assert status == 301 and headers["Referrer-Policy"] == "no-referrer"

            # The tier page.
            status, headers, body = fetch(page_url)
            page = body.decode()
            assert status == 200, page[:500]
            assert "Explorer downloads" in page
            assert headers["Cache-Control"] == "no-store, private"
            assert headers["Referrer-Policy"] == "no-referrer"
            assert headers["Strict-Transport-Security"].startswith("max-age=31536000")
            csp = headers["Content-Security-Policy"].split("; ")
            assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in str(csp)
            status, headers, _ = fetch(f"{origin}/admin/login/")
            assert status == 200 and headers["Referrer-Policy"] == "same-origin"  # CSRF origin checks work
            stylesheet = re.search(r'href="(/static/css/site\.[0-9a-f]{12}\.css)"', page)
            assert stylesheet, "static files are not the hashed names collectstatic wrote"
            status, headers, _ = fetch(origin + stylesheet.group(1))
            assert status == 200 and "max-age=315360000" in headers["Cache-Control"]  # whitenoise, immutable

            # The JSON API.
            status, headers, body = fetch(f"{origin}/api/downloads/tier1?t={token}")
            assert status == 200 and headers["Content-Type"] == "application/json"
            api = json.loads(body)
            assert api["plan"] == "Explorer"
            assert [entry["date"] for entry in api["daily"]] == [d.isoformat() for d in reversed(days)]
            newest = api["daily"][0]

            # A download from the page: the site checks the token and redirects to a presigned URL.
            link = re.search(rf'href="(/downloads/tier1/daily/{newest["date"]}\.parquet\?t=[^"]+)"', page)
            assert link, "no download link for the newest day on the page"
            status, headers, _ = fetch(origin + link.group(1).replace("&amp;", "&"))
            assert status == 302 and headers["Referrer-Policy"] == "no-referrer"
            location = headers["Location"]
            version = newest["sha256"][:16]
            assert location.startswith(f"{moto_server}/{bucket}/tier1/daily/{newest['date']}/{version}/data.parquet?")
            assert "X-Amz-Signature=" in location
            status, headers, data = fetch(location, headers={})
            assert status == 200
            assert hashlib.sha256(data).hexdigest() == newest["sha256"]
            assert len(data) == newest["size_bytes"]
            assert f'filename="{newest["filename"]}"' in headers["Content-Disposition"]

            # The API's own long-lived signed URL downloads the same bytes.
            status, _, same = fetch(newest["signed_url"], headers={})
            assert status == 200 and same == data

            # A wrong token is refused, on the page and the API.
            assert fetch(f"{origin}/downloads/tier1?t={'A' * 43}")[0] == 403
            assert fetch(f"{origin}/api/downloads/tier2?t={token}")[0] == 403

        health = manage(env, "healthcheck")
        assert health.strip() == "ok: all checks passed"
        checked = manage(env, "check", "--deploy", "--fail-level", "WARNING")
        assert checked.strip() == "System check identified no issues (0 silenced)."
        doctor = manage(env, "doctor", "--skip", "cron")  # no crontab here: CI has no cron daemon
        lines = doctor.strip().splitlines()
        assert not [line for line in lines[:-1] if not line.startswith("OK ")], doctor
        assert re.fullmatch(r"doctor: \d+ ok, 0 warning\(s\), 0 failure\(s\); skipped: cron", lines[-1]), doctor
        for name in ("storage.presigned", "clock.skew", "tokens.tier3", "database.migrations", "checks"):
            assert f" {name}: " in doctor

    # Tokens never reach a log: not gunicorn's access or error log, not Django's.
    access = (logs / "access.log").read_text()
    assert re.search(r'"GET /downloads/tier1 HTTP/1\.1" 200 \d+ ', access), access
    assert f'"GET /downloads/tier1/daily/{newest["date"]}.parquet HTTP/1.1" 302' in access
    for log in ("access.log", "error.log", "gunicorn.out"):
        text = (logs / log).read_text()
        assert token not in text, f"a token reached {log}"
        assert "X-Amz-Signature" not in text
