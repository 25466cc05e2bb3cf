"""Create the PostgreSQL database named in a URL if it is missing (used by `make test-postgres`).

Django's test runner creates `test_<name>` itself, but `makemigrations --check` connects to
`<name>` and warns when it does not exist.
"""

import sys
from urllib.parse import urlsplit

import psycopg
from psycopg import sql


def main(url):
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url.replace(f"/{name}", "/postgres", 1), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            print(f"created database {name}")


if __name__ == "__main__":
    main(sys.argv[1])
