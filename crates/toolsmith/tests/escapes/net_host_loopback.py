# Services on the host's loopback: the test's own listener, PostgreSQL, Redis, NATS.
import os
import socket

for port in [int(os.environ["HOST_PORT"]), 5432, 6379, 4222, 8000]:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
        print(f"ESCAPED: connected to 127.0.0.1:{port}")
    except OSError as err:
        print(f"blocked: 127.0.0.1:{port}: {err}")
