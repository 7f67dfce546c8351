# Forge the sandbox's verdict: write a fake "exited 0" status where the init reports, through
# any descriptor of pid 1 (the init), then fail for real.
import os

for fd in range(0, 64):
    path = f"/proc/1/fd/{fd}"
    try:
        with open(path, "w") as f:
            f.write('{"exitCode":0,"signal":null,"cpuMs":0,"peakMemoryKb":0,"setupError":null}\n')
        print(f"ESCAPED: wrote to {path}")
    except OSError as err:
        if fd < 4:
            print(f"blocked: {path}: {err}")
for fd in range(3, 64):
    try:
        os.write(fd, b'{"exitCode":0}\n')
        print(f"ESCAPED: wrote to descriptor {fd}")
    except OSError:
        pass
print("and now exits 0 for real")
