"""tokens.validation.validate: a token opens its own tier only, while current or during the overlap; junk costs nothing."""

import dataclasses
import random
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connections

from deliveries.tiers import Tier
from tests.support.tokens import MONDAY, SATURDAY, SUNDAY, token_of
from tokens import crypto, rotation
from tokens.validation import Validation, validate


@pytest.fixture
def issued(db):
    with time_machine.travel(SATURDAY, tick=False):
        rotation.init()
    return {tier: token_of(tier, "current") for tier in Tier.values}


@pytest.fixture
def overlap(issued):
    with time_machine.travel(SUNDAY, tick=False):
        rotation.announce()
    return {tier: (issued[tier], token_of(tier, "next")) for tier in Tier.values}


def test_current_token_opens_its_tier(issued):
    result = validate("tier1", issued["tier1"])
    assert result == Validation(ok=True, tier="tier1", state="current", is_outgoing=False, promotes_at=None)
    assert result


def test_tier_may_be_given_as_the_enum(issued):
    assert validate(Tier.TIER2, issued["tier2"]).tier == "tier2"


def test_token_opens_only_its_own_tier(overlap):
    for tier, (current, upcoming) in overlap.items():
        for other in Tier.values:
            assert bool(validate(other, current)) is (other == tier)
            assert bool(validate(other, upcoming)) is (other == tier)


def test_next_token_accepted_during_the_overlap(overlap):
    current, upcoming = overlap["tier3"]
    with time_machine.travel(SUNDAY + timedelta(hours=12), tick=False):
        new = validate("tier3", upcoming)
        old = validate("tier3", current)
    assert new == Validation(ok=True, tier="tier3", state="next", is_outgoing=False, promotes_at=None)
    assert old == Validation(ok=True, tier="tier3", state="current", is_outgoing=True, promotes_at=MONDAY)


def test_old_current_rejected_and_next_is_plain_current_after_promote(overlap):
    current, upcoming = overlap["tier1"]
    with time_machine.travel(MONDAY, tick=False):
        rotation.promote()
    assert not validate("tier1", current)
    assert validate("tier1", upcoming) == Validation(ok=True, tier="tier1", state="current")


def test_revoked_tokens_rejected_after_emergency(overlap):
    current, upcoming = overlap["tier2"]
    rotation.emergency(["tier2"])
    assert not validate("tier2", current)
    assert not validate("tier2", upcoming)
    assert validate("tier2", token_of("tier2", "current"))
    assert validate("tier1", overlap["tier1"][0])  # other tiers untouched


def test_a_well_formed_unknown_token_is_rejected(issued):
    assert validate("tier1", crypto.new_token()) == Validation(ok=False, tier="tier1")


def test_rejection_is_falsy_and_validation_is_frozen(issued):
    result = validate("tier1", "nope")
    assert not result and result.ok is False
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ok = True


BAD_TOKENS = [
    None,
    "",
    42,
    4.2,
    b"A" * 43,
    bytearray(43),
    ["A" * 43],
    {"t": "A" * 43},
    object(),
    "A" * 42,
    "A" * 44,
    "A" * 10_240,
    "\x00" * 43,
    "A" * 42 + "\x00",
    "A" * 43 + "\n",
    "A" * 42 + "=",
    "A" * 41 + "==",
    "A" * 42 + "+",
    "A" * 42 + "/",
    "A" * 42 + "é",
    "A" * 42 + "\u200b",
    " " + "A" * 42,
    "' OR 1=1 --" + "A" * 32,
    "%41" * 14 + "A",
]


@pytest.mark.parametrize(
    "token", BAD_TOKENS, ids=lambda value: f"{type(value).__name__}:{len(value) if hasattr(value, '__len__') else '-'}"
)
def test_malformed_token_rejected_without_touching_the_database(issued, token, django_assert_num_queries):
    with django_assert_num_queries(0):
        result = validate("tier1", token)
    assert result == Validation(ok=False, tier="tier1")


@pytest.mark.parametrize(
    "tier", [None, "", "tier4", "TIER1", "tier1 ", "x" * 10_240, 1, ["tier1"], {"tier1"}, b"tier1"]
)
def test_unknown_tier_rejected_without_touching_the_database(issued, tier, django_assert_num_queries):
    with django_assert_num_queries(0):
        result = validate(tier, issued["tier1"])
    assert result == Validation(ok=False, tier="")


def test_a_well_formed_token_costs_exactly_one_query(overlap, django_assert_num_queries):
    current, upcoming = overlap["tier1"]
    for token in (current, upcoming, crypto.new_token(), overlap["tier2"][0]):
        with django_assert_num_queries(1):
            validate("tier1", token)


def test_history_lookup_with_at_costs_one_query_too(overlap, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert validate("tier1", overlap["tier1"][0], at=SUNDAY)


def test_fuzzed_inputs_are_rejected_and_never_raise(issued, django_assert_max_num_queries):
    rng = random.Random(20250608)  # fixed seed: a failure reproduces
    alphabets = [
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
        "".join(map(chr, range(0, 128))),
        "".join(map(chr, range(0x80, 0x2FF))) + "\x00\ud800",
        "+/=%&?#\\'\" \t\r\n",
    ]
    real = list(issued.values())
    for _ in range(3000):
        kind = rng.randrange(5)
        if kind == 0:
            value = "".join(rng.choice(alphabets[0]) for _ in range(43))  # well formed, never issued
        elif kind == 1:
            value = "".join(rng.choice(rng.choice(alphabets)) for _ in range(rng.choice([0, 1, 42, 43, 44, 200, 5000])))
        elif kind == 2:
            token = rng.choice(real)
            at = rng.randrange(43)
            value = token[:at] + rng.choice(alphabets[0]) + token[at + 1 :]  # one character changed
            if value == token:
                continue
        elif kind == 3:
            value = rng.randbytes(rng.choice([32, 43, 64])).decode("latin-1")
        else:
            value = rng.choice(real)[: rng.randrange(43)]
        with django_assert_max_num_queries(1):
            assert not validate(rng.choice(Tier.values), value)


def test_junk_is_rejected_fast(issued):
    import time

    huge = "A" * 10_240 + "\x00"
    started = time.perf_counter()
    for _ in range(10_000):
        validate("tier1", huge)
    assert time.perf_counter() - started < 1.0  # 10k rejections well under a second: no hashing, no query


@pytest.mark.django_db(transaction=True)
def test_another_worker_sees_a_rotation_on_its_next_request():
    """No per-process cache: a worker that validated before a rotation answers the new way right after."""
    rotation.init(["tier1"])
    old = token_of("tier1", "current")
    seen = []

    def worker(step):
        try:
            seen.append((step, bool(validate("tier1", old))))
        finally:
            connections.close_all()

    def run_worker(step):
        thread = threading.Thread(target=worker, args=(step,))
        thread.start()
        thread.join()

    run_worker("before")
    rotation.emergency(["tier1"])
    run_worker("after")
    assert seen == [("before", True), ("after", False)]


def test_with_at_the_answer_comes_from_the_history(overlap):
    current, upcoming = overlap["tier1"]
    with time_machine.travel(MONDAY, tick=False):
        rotation.promote()
    assert validate("tier1", current, at=SUNDAY - timedelta(seconds=1)) == Validation(True, "tier1", "current")
    assert validate("tier1", upcoming, at=SUNDAY - timedelta(seconds=1)) == Validation(False, "tier1")
    assert validate("tier1", current, at=SUNDAY) == Validation(True, "tier1", "current", True, MONDAY)
    assert validate("tier1", upcoming, at=SUNDAY) == Validation(True, "tier1", "next")
    assert validate("tier1", current, at=MONDAY) == Validation(False, "tier1")
    assert validate("tier1", upcoming, at=MONDAY) == Validation(True, "tier1", "current")


def test_importing_the_tokens_package_touches_no_model_before_apps_load():
    """INSTALLED_APPS imports ``tokens`` before models can load: the package imports nothing."""
    code = (
        "import os, sys; os.environ['DJANGO_SETTINGS_MODULE'] = 'instrumetriq_site.settings'; "
        "import tokens, tokens.apps; assert 'tokens.models' not in sys.modules, sorted(sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=settings.BASE_DIR
    )
    assert result.returncode == 0, result.stderr
