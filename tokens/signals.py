"""What tokens tell the rest of the site, without knowing who listens."""

from django.dispatch import Signal

# Sent inside the transaction that changed a tier's live tokens (issued, promoted, retired,
# revoked), with ``tier`` and ``at``. The web side keys what it caches of the tokens by a version
# its receiver renews here, so a revoked link stops working on the next request of every worker.
live_tokens_changed = Signal()
