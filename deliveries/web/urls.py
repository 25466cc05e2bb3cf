"""Subscriber URLs. Everything under /downloads/ and /api/downloads/ carries a token and gets the
no-referrer/no-store headers from the middleware; /files/ carries a signed ticket instead."""

from django.urls import path, register_converter

from . import api, downloads, page
from .feeds import tier_feed


class DayConverter:
    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value):
        return value

    def to_url(self, value):
        return str(value)


class MonthConverter(DayConverter):
    regex = r"\d{4}-\d{2}"


register_converter(DayConverter, "day")
register_converter(MonthConverter, "month")

app_name = "deliveries"
urlpatterns = [
    path("downloads/<str:tier>", page.tier_page, name="tier_page"),
    path("downloads/<str:tier>/feed.atom", tier_feed, name="feed"),
    path("downloads/<str:tier>/daily/<day:label>.parquet", downloads.daily_file, name="daily_file"),
    path("downloads/<str:tier>/daily/<day:label>.manifest.json", downloads.daily_manifest, name="daily_manifest"),
    path("downloads/<str:tier>/mtd/<month:label>.parquet", downloads.mtd_file, name="mtd_file"),
    path("downloads/<str:tier>/mtd/<month:label>.manifest.json", downloads.mtd_manifest, name="mtd_manifest"),
    path("api/downloads/<str:tier>", api.api_tier, name="api_tier"),
    path("files/<str:filename>", downloads.signed_file, name="signed_file"),
    path("ping", page.ping, name="ping"),
]
