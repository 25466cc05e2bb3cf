"""Admin: history without tokens, rotations behind a confirmation page, Patreon links for permitted staff only."""

import logging

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from tokens import crypto, rotation
from tokens.models import RotationEvent, TierToken

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:tokens_tiertoken_changelist"


def rotate_url(mode, *tiers):
    query = "&".join(f"tier={tier}" for tier in tiers)
    return reverse("admin:tokens_tiertoken_rotate", args=[mode]) + (f"?{query}" if query else "")


def secrets_in_database():
    values = []
    for row in TierToken.objects.all():
        values += [crypto.unseal_row(row), row.digest, row.sealed, row.salt]
    return values


@pytest.fixture
def overlap():
    rotation.init()
    rotation.announce()


@pytest.fixture
def staff(client, django_user_model):
    def login(*codenames):
        user = django_user_model.objects.create_user(username=f"staff-{len(codenames)}", password="x", is_staff=True)
        perms = ["view_tiertoken", "view_rotationevent", *codenames]
        user.user_permissions.set(Permission.objects.filter(content_type__app_label="tokens", codename__in=perms))
        client.force_login(user)
        return user

    return login


def test_history_pages_never_show_a_token_digest_or_sealed_value(admin_client, overlap):
    rotation.emergency(["tier1"])
    pages = [reverse(CHANGELIST), reverse("admin:tokens_rotationevent_changelist")]
    pages += [
        reverse("admin:tokens_tiertoken_change", args=[pk]) for pk in TierToken.objects.values_list("pk", flat=True)
    ]
    pages += [
        reverse("admin:tokens_rotationevent_change", args=[pk])
        for pk in RotationEvent.objects.values_list("pk", flat=True)
    ]
    hidden = secrets_in_database()
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        body = response.content.decode()
        for value in hidden:
            assert value not in body, url


def test_history_lists_state_times_and_reason(admin_client, overlap):
    body = admin_client.get(reverse(CHANGELIST)).content.decode()
    for text in ("Current", "Next (announced, not yet promoted)", "First issue", "Manual rotation", "Explorer"):
        assert text in body


def test_history_cannot_be_added_edited_or_deleted(admin_client, overlap):
    row = TierToken.objects.first()
    assert admin_client.get(reverse("admin:tokens_tiertoken_add")).status_code == 403
    assert admin_client.get(reverse("admin:tokens_tiertoken_delete", args=[row.pk])).status_code == 403
    state = row.state
    response = admin_client.post(reverse("admin:tokens_tiertoken_change", args=[row.pk]), {"state": "revoked"})
    assert response.status_code == 403
    row.refresh_from_db()
    assert row.state == state


def test_changelist_offers_the_rotation_buttons(admin_client, overlap):
    body = admin_client.get(reverse(CHANGELIST)).content.decode()
    for mode in ("announce", "promote", "emergency"):
        assert rotate_url(mode) in body
    assert reverse("admin:tokens_tiertoken_patreon") in body


def test_confirmation_page_shows_the_plan_and_changes_nothing(admin_client, overlap):
    before = list(TierToken.objects.values_list("pk", "state"))
    response = admin_client.get(rotate_url("promote"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "stops working at once" in body
    assert body.count('name="tier"') == 3 and body.count("checked") == 3
    assert "would make next token #" in body
    assert list(TierToken.objects.values_list("pk", "state")) == before


def test_the_token_pages_lead_back_to_the_token_list(admin_client, overlap):
    for url in (rotate_url("promote"), reverse("admin:tokens_tiertoken_patreon")):
        body = admin_client.get(url).content.decode()
        crumbs = body.split('<div class="breadcrumbs">', 1)[1].split("</div>", 1)[0]
        assert f'href="{reverse(CHANGELIST)}"' in crumbs, url
        assert f'href="{reverse("admin:index")}"' in crumbs, url


def test_promote_now_rotates_after_confirmation_and_records_who(admin_client, admin_user, overlap):
    response = admin_client.post(rotate_url("promote"), {"tier": ["tier1", "tier3"]})
    assert response.status_code == 302 and response["Location"] == reverse("admin:tokens_tiertoken_patreon")
    assert set(TierToken.objects.filter(state="retired").values_list("tier", flat=True)) == {"tier1", "tier3"}
    event = RotationEvent.objects.latest("pk")
    assert (event.mode, event.actor, event.user, event.tiers) == ("promote", "admin", admin_user, ["tier1", "tier3"])


def test_announce_now_issues_next_tokens_marked_manual(admin_client):
    rotation.init()
    admin_client.post(rotate_url("announce"), {"tier": ["tier2"]})
    assert list(TierToken.objects.filter(state="next").values_list("tier", "reason")) == [("tier2", "manual")]


def test_emergency_action_on_selected_rows_goes_to_the_confirmation_page(admin_client, overlap):
    selected = TierToken.objects.filter(tier="tier2").values_list("pk", flat=True)
    response = admin_client.post(
        reverse(CHANGELIST), {"action": "emergency_rotate", "_selected_action": [str(pk) for pk in selected]}
    )
    assert response.status_code == 302 and response["Location"] == rotate_url("emergency", "tier2")
    assert not TierToken.objects.filter(state="revoked").exists()  # nothing happens before confirmation
    page = admin_client.get(response["Location"]).content.decode()
    assert 'value="tier2" id="tier-tier2" checked' in page and 'value="tier1" id="tier-tier1">' in page
    admin_client.post(response["Location"], {"tier": ["tier2"]})
    assert TierToken.objects.filter(tier="tier2", state="revoked").count() == 2
    assert not TierToken.objects.filter(tier="tier1", state="revoked").exists()


def test_emergency_page_preselects_no_tier(admin_client, overlap):
    body = admin_client.get(rotate_url("emergency")).content.decode()
    assert " checked" not in body.split('name="force"')[0]


def test_confirming_without_a_tier_changes_nothing(admin_client, overlap):
    admin_client.post(rotate_url("emergency"), {})
    assert not TierToken.objects.filter(state="revoked").exists()


def test_emergency_rerun_needs_the_force_box(admin_client, overlap):
    admin_client.post(rotate_url("emergency"), {"tier": ["tier1"]})
    admin_client.post(rotate_url("emergency"), {"tier": ["tier1"]})
    assert TierToken.objects.filter(tier="tier1", reason="emergency").count() == 1
    admin_client.post(rotate_url("emergency"), {"tier": ["tier1"], "force": "on"})
    assert TierToken.objects.filter(tier="tier1", reason="emergency").count() == 2


def test_actions_and_rotation_pages_need_the_rotate_permission(client, staff, overlap):
    staff()
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.get(rotate_url("announce")).status_code == 403
    assert client.post(rotate_url("promote"), {"tier": ["tier1"]}).status_code == 403
    assert not TierToken.objects.filter(state="retired").exists()
    assert "emergency_rotate" not in client.get(reverse(CHANGELIST)).content.decode()


def test_staff_with_the_rotate_permission_can_rotate(client, staff, overlap):
    staff("rotate_tiertoken")
    response = client.post(rotate_url("promote"), {"tier": ["tier1"]})
    event = RotationEvent.objects.latest("pk")
    assert response["Location"] == reverse("admin:tokens_rotationevent_change", args=[event.pk])  # no links permission
    assert TierToken.objects.filter(state="retired").count() == 1


def test_unknown_mode_is_not_found(admin_client):
    assert admin_client.get(reverse("admin:tokens_tiertoken_rotate", args=["init"])).status_code == 404


def test_patreon_page_shows_the_links_to_permitted_staff_and_is_not_cached(admin_client, overlap):
    response = admin_client.get(reverse("admin:tokens_tiertoken_patreon"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    for row in TierToken.objects.all():
        assert f"/downloads/{row.tier}?t={crypto.unseal_row(row)}" in body
    assert "Replace the link in the Explorer pinned post" in body and "## Patreon links" in body


def test_patreon_page_is_refused_without_the_links_permission(client, staff, overlap):
    staff("rotate_tiertoken")
    assert client.get(reverse("admin:tokens_tiertoken_patreon")).status_code == 403
    assert reverse("admin:tokens_tiertoken_patreon") not in client.get(reverse(CHANGELIST)).content.decode()


def test_anonymous_visitors_are_sent_to_the_login_page(client, overlap):
    for url in (rotate_url("emergency"), reverse("admin:tokens_tiertoken_patreon")):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_admin_rotations_log_one_line_per_tier_without_tokens(admin_client, overlap, caplog):
    caplog.set_level(logging.INFO, logger="tokens.admin")
    admin_client.post(rotate_url("promote"), {"tier": ["tier1", "tier2", "tier3"]})
    lines = [record.getMessage() for record in caplog.records if record.name == "tokens.admin"]
    assert len(lines) == 4 and all("(by admin)" in line for line in lines)
    for value in secrets_in_database():
        assert all(value not in line for line in lines)
