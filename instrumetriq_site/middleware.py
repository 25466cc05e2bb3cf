"""Headers for responses whose URL carries, or may carry, a tier token or a signed ticket."""

TOKEN_PATH_PREFIXES = ("/downloads/", "/api/downloads/", "/files/")
TOKEN_PARAMETERS = ("t", "token")


def carries_token(request):
    """Under a token path, or any URL with a ``t``/``token`` parameter (a mistyped path included)."""
    return request.path.startswith(TOKEN_PATH_PREFIXES) or any(name in request.GET for name in TOKEN_PARAMETERS)


class TokenPageHeadersMiddleware:
    """No Referer leaves a token page, and no cache keeps one.

    Applied by URL rather than per view so that error pages (403, 404, 503) and redirects of those
    URLs are covered too: they were requested with a token in the query string all the same. Every
    other page keeps the site's ``same-origin`` policy, which Django's CSRF origin check needs
    (under ``no-referrer`` a browser posts forms with ``Origin: null``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if carries_token(request):
            response["Referrer-Policy"] = "no-referrer"
            response["Cache-Control"] = "no-store, private"
            response.setdefault("X-Robots-Tag", "noindex, nofollow")
        return response
