# UDP datagrams out (DNS to a public resolver).
import socket

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
try:
    s.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x07example\x03com\x00\x00\x01\x00\x01", ("8.8.8.8", 53))
    data = s.recv(512)
    print(f"ESCAPED: got a UDP answer ({len(data)} bytes)")
except OSError as err:
    print(f"blocked: udp: {err}")
