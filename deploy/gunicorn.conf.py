"""Gunicorn for the Instrumetriq site, behind a TLS-terminating reverse proxy on the same machine.

Used by deploy/systemd/instrumetriq-web.service and by tests/site/test_production.py (which
overrides bind, workers and log files on the command line: the command line wins over this file).

Tier tokens travel in query strings, so the access log format has no %(q)s (query), %(r)s (request
line, query included), %(f)s (referrer: another page's token) and nothing about who asked (%(h)s,
%(a)s): time, method, path, protocol, status, bytes, seconds.
"""

bind = "127.0.0.1:8000"  # only the reverse proxy talks to gunicorn; never a public address
# gthread: a slow client streaming a big file from local storage occupies a thread, not the whole
# worker, and the worker keeps telling the arbiter it is alive (a sync worker would be killed at
# `timeout` in the middle of the download). On S3/R2 downloads are 302s and every request is short.
worker_class = "gthread"
workers = 2
threads = 4
timeout = 60
graceful_timeout = 30
keepalive = 5
max_requests = 2000  # recycle workers now and then; the jitter keeps them from all restarting at once
max_requests_jitter = 200
forwarded_allow_ips = "127.0.0.1,::1"  # trust X-Forwarded-Proto from the local proxy only
proc_name = "instrumetriq"
# gunicorn >= 25.1 opens a control socket under $XDG_RUNTIME_DIR or $HOME/.gunicorn by default;
# systemctl (reload, restart) is the control here, so no socket is left in the service user's home.
control_socket_disable = True

accesslog = "-"  # stdout: journald under systemd
errorlog = "-"
access_log_format = '%(t)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(L)s'


def on_starting(server):
    """Redact tokens from gunicorn's own logs too: its error log names the request URI (query
    string included) when a request fails outside Django."""
    import logging

    from instrumetriq_site.logging import RedactTokensFilter

    for name in ("gunicorn.error", "gunicorn.access"):
        logging.getLogger(name).addFilter(RedactTokensFilter())
