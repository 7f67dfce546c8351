# Many small files, to exhaust space or inodes.
import os

os.makedirs("many", exist_ok=True)
for i in range(2_000_000):
    with open(f"many/{i}", "w") as f:
        f.write("x" * 512)
print("ESCAPED: created 2,000,000 files")
