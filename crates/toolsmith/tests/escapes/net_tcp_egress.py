# TCP to the internet, by address and by name.
import socket

for host, port in [("1.1.1.1", 443), ("8.8.8.8", 53), ("pypi.org", 443)]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print(f"ESCAPED: connected to {host}:{port}")
    except OSError as err:
        print(f"blocked: {host}:{port}: {err}")
