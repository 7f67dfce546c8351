# Writing anywhere but the working directory and /tmp, directly and by ../ traversal.
import os

targets = ["/usr/evil", "/env/evil", "/input/evil", "/evil", "/etc/evil", "/proc/sys/kernel/hostname",
           "../usr/evil", "../../input/evil", "/work/../env/evil", "/.toolsmith/evil"]
for path in targets:
    try:
        with open(path, "w") as f:
            f.write("evil")
        print(f"ESCAPED: wrote {path}")
    except OSError as err:
        print(f"blocked: {path}: {err}")
try:
    os.chmod("/usr/bin/python3", 0o777)
    print("ESCAPED: chmod /usr/bin/python3")
except OSError as err:
    print(f"blocked: chmod: {err}")
