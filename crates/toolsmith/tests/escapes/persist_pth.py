# Code that would run in the next run: a .pth file or sitecustomize in the environment or
# the system's site-packages.
import site
import sys

dirs = set(site.getsitepackages()) | {"/env/lib/python3.11/site-packages", "/usr/lib/python3/dist-packages"}
for directory in sorted(dirs):
    for name, content in [("evil.pth", "import os; os.environ['EVIL'] = '1'\n"), ("sitecustomize.py", "EVIL = 1\n")]:
        path = f"{directory}/{name}"
        try:
            with open(path, "w") as f:
                f.write(content)
            print(f"ESCAPED: wrote {path}")
        except OSError as err:
            print(f"blocked: {path}: {err}")
print("python:", sys.version.split()[0])
