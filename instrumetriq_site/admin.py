"""What both apps' admins share (Django's admin finds this module too; it registers nothing)."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only the commands and rotations write (deliveries' records, tokens' history):
    adding, editing or deleting one by hand would desync it from storage or rewrite history, so
    the admin only shows them."""

    class Media:
        css = {"all": ["css/admin-delivery.css"]}

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def lines_html(lines):
    """Readable lines for a detail page, one list item each (instead of the JSON they are stored as)."""
    lines = list(lines)
    if not lines:
        return "none"
    return format_html(
        '<ul class="record-lines">{}</ul>', format_html_join("", "<li>{}</li>", ((line,) for line in lines))
    )
