# The service's environment: our own, pid 1's, and the service's by pid. Everything read is
# printed; the test checks none of the service's values appear.
import os

print("environ:", dict(os.environ))
for path in ["/proc/1/environ", "/proc/self/environ", f"/proc/{os.environ['SERVICE_PID']}/environ"]:
    try:
        with open(path, "rb") as f:
            print(path, f.read().replace(b"\0", b" ").decode(errors="replace"))
    except OSError as err:
        print(f"blocked: {path}: {err}")
