# Links planted for the host to follow: in the working directory (which the host never reads
# back) and in the staged input (read-only).
import os

for link, target in [("report.json", "/etc/passwd"), ("result", "/root"), ("/input/evil", "/etc/shadow")]:
    try:
        os.symlink(target, link)
        if link.startswith("/input"):
            print(f"ESCAPED: planted {link} in the input")
        else:
            print(f"planted {link} -> {target} in the sandbox's own tmpfs")
    except OSError as err:
        print(f"blocked: {link}: {err}")
