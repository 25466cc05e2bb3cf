"""What README.md and docs/ tell people to type works: every shell block a subscriber or the operator
would paste is either run here, in a real shell, or marked as illustrative. A doc command that fails
is a bug.

A block is marked by the HTML comment on the line before it: ``<!-- doc-test: NAME -->`` (run by
the runner of that name below) or ``<!-- illustrative: why -->`` (server set-up, interactive, or run
elsewhere). The blocks run as written; only what cannot be the same here is substituted: the site's
address, the token, the log folder, and ``manage``, which the docs define as the server's wrapper and
is ``python manage.py`` here.
"""

import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.conf import settings

from deliveries import sample
from tests.support.processes import child_env
from tests.support.scenarios import publish_scenario
from tests.support.servers import free_port
from tests.support.tokens import issue_current

ROOT = Path(settings.BASE_DIR)
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = {"sh", "bash", "shell", "console"}
MARKER = re.compile(r"^\s*<!--\s*(doc-test|illustrative):\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)```(\S*)\s*$")
# An unlabelled block whose lines start like these is a shell block in disguise (a usage synopsis,
# with [options] or a|b choices, is not something to paste).
COMMANDS = re.compile(
    r"^(\$ )?(manage(\.py)?|\.venv/|python3?|curl|sudo|make|gunicorn|systemctl|apt|git|pip|tail|cp)\b"
)


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    text: str
    kind: str  # "doc-test", "illustrative" or ""
    name: str

    def __str__(self):
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    found, index = [], 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, lang = opening.groups()
        end = index + 1
        while not re.match(rf"^{re.escape(indent)}```\s*$", lines[end]):
            end += 1
        text = "\n".join(line[len(indent) :] for line in lines[index + 1 : end])
        before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
        marker = MARKER.match(before)
        kind, name = (marker.group(1), marker.group(2).split()[0] if marker.group(2) else "") if marker else ("", "")
        found.append(Block(path, index + 1, lang, text, kind, name))
        index = end + 1
    return found


def all_blocks():
    return [block for path in DOCUMENTS for block in blocks(path)]


def is_shell(block):
    if block.lang in SHELL:
        return True
    if block.lang:
        return False
    commands = [line for line in block.text.splitlines() if COMMANDS.match(line.strip())]
    return any("[" not in line and "|" not in line for line in commands)


def doc_block(name):
    (block,) = [block for block in all_blocks() if block.kind == "doc-test" and block.name == name]
    return block


# Every doc-test block named in the docs has a test below that runs it, and no test runs a block
# that is gone: the two lists must stay equal.
RUNNERS = {
    "make-run",
    "curl",
    "ops-patreon-links",
    "ops-monday-check",
    "ops-emergency",
    "ops-emergency-links",
    "ops-recent-runs",
    "ops-partial-day",
    "ops-build-mtd",
    "ops-rerun",
    "ops-backfill",
    "ops-force-index",
    "ops-healthcheck",
}


def test_every_shell_block_is_run_by_a_test_or_marked_illustrative():
    found = all_blocks()
    assert len(found) > 40  # the parser sees the docs
    unmarked = [str(block) for block in found if is_shell(block) and not block.kind]
    assert unmarked == [], (
        "run these in tests/site/test_docs.py (<!-- doc-test: NAME -->) or mark them <!-- illustrative: why -->"
    )
    named = [block.name for block in found if block.kind == "doc-test"]
    assert len(named) == len(set(named)), "two blocks share a doc-test name"
    assert set(named) == RUNNERS
    reasons = [str(block) for block in found if block.kind == "illustrative" and not block.name]
    assert reasons == [], "say why a block is illustrative"


def test_the_access_log_format_shown_is_the_one_deployed():
    conf = (ROOT / "deploy" / "gunicorn.conf.py").read_text()
    deployed = re.search(r"access_log_format = '([^']+)'", conf).group(1)
    shown = [block for block in all_blocks() if "--access-logformat" in block.text]
    assert len(shown) == 2
    for block in shown:
        assert f"--access-logformat '{deployed}'" in block.text, str(block)


def bash(script, env, cwd, timeout=300):
    completed = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert completed.returncode == 0, f"exit {completed.returncode}\n{script}\n{completed.stdout}\n{completed.stderr}"
    return completed.stdout


# --- README: make run, and curl ------------------------------------------------------------------


def test_make_run_serves_the_demo_and_hand_run_patreon_links_use_its_port(tmp_path):
    """`make run PORT=...` then `manage.py patreon_links` by hand: the links are on the demo's port."""
    port = free_port()
    env = child_env(VAR_DIR=tmp_path / "var", PORT=port, DEMO_DAYS=4)
    server = subprocess.Popen(
        ["bash", "-c", doc_block("make-run").text],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # make, runserver and its reloader: one group to stop
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stdout.read()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    assert b"Instrumetriq downloads" in response.read()
                    break
            except OSError:
                assert time.monotonic() < deadline, "make run did not serve the demo"
                time.sleep(0.3)
        hand_env = child_env(VAR_DIR=tmp_path / "var")  # no SITE_URL, no PORT: what a person has
        links = bash(f"{sys.executable} manage.py patreon_links", hand_env, ROOT)
        urls = re.findall(r"http://\S+", links)
        assert len(urls) == 3 and all(url.startswith(f"http://127.0.0.1:{port}/downloads/tier") for url in urls)
        with urllib.request.urlopen(urls[0], timeout=30) as response:
            assert response.status == 200 and b"Explorer downloads" in response.read()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        server.stdout.close()


@pytest.mark.django_db(transaction=True)
def test_the_readme_curl_block_downloads_resumes_and_verifies(live_server, tmp_path, settings):
    settings.SITE_URL = live_server.url
    scenario = publish_scenario("tier1", today=date.today())
    token = issue_current("tier1")
    newest = scenario.dailies[scenario.retained[0]]
    day = newest.date.isoformat()
    script = (
        doc_block("curl")
        .text.replace("https://SITE", live_server.url)
        .replace("TOKEN=...", f"TOKEN={token}")
        .replace("2026-11-23", day)
    )
    env = child_env()
    out = bash(script, env, tmp_path)
    target = tmp_path / newest.download_filename
    assert f"{newest.download_filename}: OK" in out
    assert hashlib.sha256(target.read_bytes()).hexdigest() == newest.sha256
    assert '"plan": "Explorer"' in out  # the listing, pretty-printed

    # A cut download resumes with the same line, and checks out.
    whole = target.read_bytes()
    target.write_bytes(whole[: len(whole) // 3])
    download = script[script.index("curl -fL -C -") :].split("\ncurl -fsS", 1)[0]
    bash(f"TOKEN={token}\n{download}", env, tmp_path)
    assert target.read_bytes() == whole
    assert f"{newest.download_filename}: OK" in bash("sha256sum --ignore-missing -c SHA256SUMS", env, tmp_path)


# --- docs/operations.md: the runbook, block after block, on one sandbox ------------------------------

OPERATIONS_ORDER = [
    "ops-patreon-links",
    "ops-monday-check",
    "ops-emergency",
    "ops-emergency-links",
    "ops-partial-day",
    "ops-build-mtd",
    "ops-rerun",
    "ops-recent-runs",
    "ops-backfill",
    "ops-force-index",
    "ops-healthcheck",
]


def test_the_runbook_commands_run_as_written(tmp_path):
    """One sandbox site (SQLite, local storage, a sample archive holding the days the docs name and
    yesterday), then each block of docs/operations.md in the runbook's order, in a real bash."""
    archive, logs = tmp_path / "archive", tmp_path / "log"
    logs.mkdir()
    for day in [date(2026, 11, 20) + timedelta(days=n) for n in range(5)] + [sample.yesterday_utc()]:
        missing = range(21, 24) if day == date(2026, 11, 24) else ()  # "A partial day" of the runbook
        sample.write_day(archive, day, entries_per_hour=2, samples_per_entry=3, missing_hours=missing)
    env = child_env(VAR_DIR=tmp_path / "var", ARCHIVE_ROOT=archive, SITE_URL="https://downloads.example.com", DEBUG=1)
    prelude = f'manage() {{ "{sys.executable}" "{ROOT}/manage.py" "$@"; }}\n'
    bash(
        prelude + "manage migrate -v0\nmanage rotate_tokens --mode init >/dev/null\n"
        f"manage rotate_tokens --mode announce >> {logs}/rotate_tokens.log\n"
        f"manage rotate_tokens --mode promote >> {logs}/rotate_tokens.log",
        env,
        ROOT,
    )
    outputs = {}
    for name in OPERATIONS_ORDER:
        script = doc_block(name).text.replace("/var/log/instrumetriq/", f"{logs}/")
        outputs[name] = bash(prelude + script, env, ROOT)

    assert outputs["ops-patreon-links"].count("https://downloads.example.com/downloads/tier") == 3
    assert "promote: changed 3 of 3 tier(s)" in outputs["ops-monday-check"]
    assert "emergency tier2 (Analyst): revoked" in outputs["ops-emergency"]
    assert "Analyst (tier2)" in outputs["ops-emergency-links"] and "tier1" not in outputs["ops-emergency-links"]
    assert "2026-11-24: published: published" in outputs["ops-partial-day"]
    assert "(partial: 21/24 hours)" in outputs["ops-partial-day"]
    assert re.search(
        r"^\d+ build_daily \d{4}-\d\d-\d\d \d\d:\d\d (success|nothing_to_do)", outputs["ops-recent-runs"], re.M
    )
    assert "build_daily success" in outputs["ops-rerun"]
    assert "[dry run]" not in outputs["ops-backfill"] and "dry_run" in outputs["ops-backfill"]
    assert "wrote index/tier1.json" in outputs["ops-force-index"]
    assert outputs["ops-healthcheck"].splitlines() == ["ok: all checks passed", "ok: all checks passed"]
    # every build_daily line carries its UTC time, as cron appends them to build_daily.log
    lines = [line for line in outputs["ops-rerun"].splitlines() if line.strip()]
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC ", line) for line in lines), lines
    shutil.rmtree(tmp_path / "var", ignore_errors=True)
