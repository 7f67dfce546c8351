# Host files: passwords, root's home, the service's data.
import os

for path in ["/etc/shadow", "/etc/passwd", "/root/.bash_history", "/root/.ssh/id_rsa", "/root/.cargo/credentials.toml"]:
    try:
        with open(path) as f:
            print(f"ESCAPED: read {path}: {f.read(80)!r}")
    except OSError as err:
        print(f"blocked: {path}: {err}")
for path in ["/root", "/home", "/etc", "/var/lib/postgresql", "/work/main"]:
    try:
        print(f"ESCAPED: listed {path}: {os.listdir(path)[:5]}")
    except OSError as err:
        print(f"blocked: {path}: {err}")
