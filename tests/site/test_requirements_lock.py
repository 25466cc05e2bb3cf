"""The virtualenv is installed from the lock files (``make venv``), so they must hold what
requirements.txt and requirements-dev.txt ask for: a pin changed without ``make lock`` fails here,
not on a deployment that installs something else than was tested."""

import re
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path):
    """{name: version} of a requirements file's ``name==version`` lines, following ``-r``."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(path.parent / line[3:].strip()))
        elif match := PIN.match(line):
            found[normalized(match[1])] = match[2]
    return found


def locked(path):
    """{name: {versions}} of a lock (a package may be locked per Python version) and the names
    locked without a hash."""
    versions, unhashed, name = {}, [], None
    for line in path.read_text().splitlines():
        if match := PIN.match(line):
            name = normalized(match[1])
            versions.setdefault(name, set()).add(match[2])
            if not line.rstrip().endswith("\\"):
                unhashed.append(name)
    return versions, unhashed


@pytest.mark.parametrize(
    ("requirements", "lock"),
    [("requirements.txt", "requirements.lock"), ("requirements-dev.txt", "requirements-dev.lock")],
)
def test_every_pinned_requirement_is_locked_at_its_version_with_hashes(requirements, lock):
    wanted = pins(ROOT / requirements)
    versions, unhashed = locked(ROOT / lock)
    assert wanted, requirements
    stale = {name: (version, versions.get(name)) for name, version in wanted.items() if versions.get(name) != {version}}
    assert stale == {}, f"run `make lock`: {lock} disagrees with {requirements} (wanted, locked)"
    assert unhashed == []


def test_the_dev_lock_has_the_runtime_locks_versions():
    """Tests run on the versions a deployment installs from requirements.lock."""
    runtime, _ = locked(ROOT / "requirements.lock")
    dev, _ = locked(ROOT / "requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime
