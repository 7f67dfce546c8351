# Host UNIX sockets: PostgreSQL's socket file, and an abstract socket the test listens on.
import os
import socket

targets = ["/var/run/postgresql/.s.PGSQL.5432", "/run/postgresql/.s.PGSQL.5432", "/run/systemd/private"]
targets.append("\0" + os.environ["HOST_ABSTRACT"])
for path in targets:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        print(f"ESCAPED: connected to unix socket {path!r}")
    except OSError as err:
        print(f"blocked: {path!r}: {err}")
