"""The subscriber web side: the tier page, the JSON API, the Atom feed, the token-checked
downloads and ``/healthz``. It reads what the nightly jobs published and writes nothing but
download counts."""
