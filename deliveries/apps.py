from django.apps import AppConfig


class DeliveriesConfig(AppConfig):
    name = "deliveries"
    verbose_name = "Deliveries"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from tokens.signals import live_tokens_changed

        from .versions import tokens_changed

        # A rotation changes what a tier's links open: the tier gets a new listing version, in the
        # rotation's own transaction (tokens know nothing of deliveries; this is the one link).
        live_tokens_changed.connect(tokens_changed, dispatch_uid="deliveries.listing_version")
