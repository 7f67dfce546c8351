# IPv6 egress, and the host's IPv6 loopback.
import os
import socket

targets = [("2606:4700:4700::1111", 443)]
if os.environ.get("HOST_PORT6"):
    targets.append(("::1", int(os.environ["HOST_PORT6"])))
for host, port in targets:
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect((host, port))
        print(f"ESCAPED: connected to [{host}]:{port}")
    except OSError as err:
        print(f"blocked: [{host}]:{port}: {err}")
