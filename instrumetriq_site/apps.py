from django.apps import AppConfig


class SiteConfig(AppConfig):
    name = "instrumetriq_site"
    verbose_name = "Instrumetriq site"

    def ready(self):
        from . import checks  # noqa: F401  (registers the system checks)
