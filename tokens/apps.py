from django.apps import AppConfig
from django.core import checks


class TokensConfig(AppConfig):
    name = "tokens"
    verbose_name = "Tier tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from .checks import check_rotation_cron

        checks.register(check_rotation_cron)
