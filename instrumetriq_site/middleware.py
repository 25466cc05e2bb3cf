"""Headers for pages that carry a tier token in their URL."""

TOKEN_PATH_PREFIXES = ("/downloads/", "/api/downloads/")


class TokenPageHeadersMiddleware:
    """No Referer leaves a token page, and no cache keeps one.

    Applied by path rather than per view so that error pages (403, 404, 503) of those URLs are
    covered too: they were requested with a token in the query string all the same.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path.startswith(TOKEN_PATH_PREFIXES):
            response["Referrer-Policy"] = "no-referrer"
            response["Cache-Control"] = "no-store, private"
            response.setdefault("X-Robots-Tag", "noindex, nofollow")
        return response
