"""Checklist versions: a review keeps the version it started with; new reviews use the newest;
a version in use is read-only in the admin, which makes the next version by copying."""

import pytest
from django.contrib import admin
from django.test import RequestFactory

from gates.criteria import registry
from gates.stages import Stage
from gates.stages import Transition as T
from readiness import services
from readiness.admin import ItemInline
from readiness.defaults import VERSION_1
from readiness.models import ChecklistItemTemplate, ChecklistTemplate, ReadinessReview
from tests.factories import (
    ChecklistItemTemplateFactory,
    ChecklistTemplateFactory,
    InitiativeFactory,
)
from tests.readiness.helpers import (
    ASSIGNMENT,
    check,
    decide,
    items_of,
    new_version,
    review_url,
    submit_for_review,
)

pytestmark = pytest.mark.django_db

ADMIN = "/admin/readiness/checklisttemplate/"
COPIED = ("key", "title", "guidance", "asks_numbers", "system_evidence", "position")


def copied_fields(template) -> list[tuple]:
    return list(template.items.order_by("position", "key").values_list(*COPIED))


# Reviews and versions -----------------------------------------------------------------------
def test_a_review_keeps_the_version_it_started_with_after_a_new_version(
    client, initiative, items, cast
):
    review = items["data_pipeline"].review
    started_on = review.template
    version = new_version("Data protection impact assessment")

    review.refresh_from_db()
    assert review.template == started_on != version
    assert review.items.count() == 6
    assert "Data protection impact assessment" not in {
        i.template_item.title for i in review.items.select_related("template_item")
    }
    # Its checklist is complete with its own six items, and the page shows those six.
    for key, item in items.items():
        check(item, getattr(cast, ASSIGNMENT[key]))
    outcome = {o.key: o for o in registry.evaluate(initiative, T.PASS_REVIEW)}
    assert outcome["checklist_complete"].passed
    assert "All 6 checklist items" in outcome["checklist_complete"].reason
    client.force_login(cast.viewer)
    page = client.get(review_url(review)).content.decode()
    assert "Data protection impact assessment" not in page
    assert f"Checklist v{started_on.version}" in page
    decide(initiative, T.PASS_REVIEW, cast.pm)
    initiative.refresh_from_db()
    assert initiative.stage == Stage.NARROW_LAUNCH


def test_new_reviews_use_the_newest_version(review, cast):
    version = new_version("Data protection impact assessment")
    other = InitiativeFactory(framed=True)

    newer = submit_for_review(other, user=cast.pm)

    assert newer.template == version
    assert sorted(newer.items.values_list("template_item_id", flat=True)) == sorted(
        version.items.values_list("pk", flat=True)
    )
    assert "Data protection impact assessment" in {
        i.template_item.title for i in newer.items.select_related("template_item")
    }
    assert len(items_of(newer)) == 7


def test_a_version_saved_without_items_is_not_used_until_it_has_some(cast):
    first = services.current_template()
    draft = ChecklistTemplateFactory()
    assert services.current_template() == first

    review = submit_for_review(InitiativeFactory(framed=True), user=cast.pm)
    assert review.template == first
    assert not draft.in_use

    ChecklistItemTemplateFactory(template=draft, title="The only check")
    assert services.current_template() == draft


def test_a_review_without_items_cannot_pass(review, cast):
    review.items.all().delete()
    outcome = {o.key: o for o in registry.evaluate(review.initiative, T.PASS_REVIEW)}
    assert not outcome["checklist_complete"].passed


def test_version_1_is_reinstalled_when_the_checklist_table_is_empty():
    ChecklistItemTemplate.objects.all().delete()
    ChecklistTemplate.objects.all().delete()

    template = services.current_template()

    assert template.version == 1
    assert list(template.items.values_list("key", "title", "asks_numbers", "system_evidence")) == [
        (key, title, numbers, evidence) for key, title, _, numbers, evidence in VERSION_1
    ]


# The admin ----------------------------------------------------------------------------------
@pytest.fixture
def admin_request(superuser):
    request = RequestFactory().get(ADMIN)
    request.user = superuser
    return request


@pytest.mark.parametrize("used", [True, False], ids=["in-use", "unused"])
def test_admin_locks_the_items_of_a_version_in_use(admin_request, review, used):
    template = review.template if used else new_version()
    assert template.in_use is used
    inline = ItemInline(ChecklistTemplate, admin.site)
    model_admin = admin.site._registry[ChecklistTemplate]

    assert inline.has_add_permission(admin_request, template) is not used
    assert inline.has_change_permission(admin_request, template) is not used
    assert inline.has_delete_permission(admin_request, template) is not used
    assert model_admin.has_delete_permission(admin_request, template) is not used
    assert ("notes" in model_admin.get_readonly_fields(admin_request, template)) is used


def test_admin_change_page_of_a_version_in_use_shows_no_item_inputs(client, superuser, review):
    client.force_login(superuser)
    used = client.get(f"{ADMIN}{review.template.pk}/change/").content.decode()
    unused = client.get(f"{ADMIN}{new_version().pk}/change/").content.decode()
    assert 'name="items-0-title"' not in used
    assert "Data pipeline reliability" in used
    assert 'name="items-0-title"' in unused


def test_admin_post_to_a_version_in_use_changes_nothing(client, superuser, review):
    template = review.template
    before = copied_fields(template)
    items = list(template.items.order_by("position", "id"))
    data = {
        "notes": "Rewritten.",
        "items-TOTAL_FORMS": str(len(items) + 1),
        "items-INITIAL_FORMS": str(len(items)),
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
        "_save": "Save",
    }
    for index, item in enumerate(items):
        data.update(
            {
                f"items-{index}-id": str(item.pk),
                f"items-{index}-template": str(template.pk),
                f"items-{index}-position": str(item.position),
                f"items-{index}-key": item.key,
                f"items-{index}-title": "Changed after the review started",
                f"items-{index}-guidance": item.guidance,
                f"items-{index}-system_evidence": item.system_evidence,
                f"items-{index}-DELETE": "on" if index == 0 else "",
            }
        )
    extra = len(items)
    data.update(
        {
            f"items-{extra}-position": "9",
            f"items-{extra}-key": "smuggled",
            f"items-{extra}-title": "Smuggled in",
            f"items-{extra}-guidance": "None.",
        }
    )
    client.force_login(superuser)

    client.post(f"{ADMIN}{template.pk}/change/", data)

    template.refresh_from_db()
    assert copied_fields(template) == before
    assert template.notes != "Rewritten."


def test_admin_delete_of_a_version_in_use_is_refused(client, superuser, review):
    client.force_login(superuser)
    response = client.post(f"{ADMIN}{review.template.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    assert ChecklistTemplate.objects.filter(pk=review.template.pk).exists()


def test_new_version_action_copies_the_items_into_version_n_plus_1(client, superuser, review):
    source = review.template
    client.force_login(superuser)

    response = client.post(ADMIN, {"action": "new_version", "_selected_action": [source.pk]})

    assert response.status_code == 302
    copy = ChecklistTemplate.objects.get(version=source.version + 1)
    assert copied_fields(copy) == copied_fields(source)
    assert not set(copy.items.values_list("pk", flat=True)) & set(
        source.items.values_list("pk", flat=True)
    )
    assert copy.notes == f"Copied from v{source.version}."
    assert not copy.in_use
    assert services.current_template() == copy
    assert ReadinessReview.objects.get(pk=review.pk).template == source


def test_new_version_from_an_older_version_takes_the_number_after_the_newest(
    client, superuser, review
):
    source = review.template
    newest = new_version("Extra check")
    client.force_login(superuser)

    client.post(ADMIN, {"action": "new_version", "_selected_action": [source.pk]})

    copy = ChecklistTemplate.objects.get(version=newest.version + 1)
    assert copied_fields(copy) == copied_fields(source)


def test_admin_numbers_a_version_added_by_hand_after_the_newest(client, superuser, review):
    client.force_login(superuser)
    data = {
        "notes": "Adds a privacy check.",
        "items-TOTAL_FORMS": "1",
        "items-INITIAL_FORMS": "0",
        "items-MIN_NUM_FORMS": "0",
        "items-MAX_NUM_FORMS": "1000",
        "items-0-position": "1",
        "items-0-key": "privacy",
        "items-0-title": "Privacy review",
        "items-0-guidance": "Link the privacy review.",
        "items-0-system_evidence": "",
        "_save": "Save",
    }
    response = client.post(f"{ADMIN}add/", data)
    assert response.status_code == 302
    added = ChecklistTemplate.objects.get(notes="Adds a privacy check.")
    assert added.version == review.template.version + 1
    assert list(added.items.values_list("key", flat=True)) == ["privacy"]
