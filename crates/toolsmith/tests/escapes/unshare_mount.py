# New namespaces, mounts, and other kernel surface (bpf, io_uring, keyrings).
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER, CLONE_NEWNS, CLONE_NEWNET = 0x10000000, 0x00020000, 0x40000000
for name, flags in [("user", CLONE_NEWUSER), ("mount", CLONE_NEWNS), ("net", CLONE_NEWNET)]:
    if libc.unshare(flags) == 0:
        print(f"ESCAPED: unshare({name})")
    else:
        print(f"blocked: unshare({name}): errno {ctypes.get_errno()}")
if libc.mount(b"tmpfs", b"/tmp", b"tmpfs", 0, None) == 0:
    print("ESCAPED: mounted a tmpfs")
else:
    print(f"blocked: mount: errno {ctypes.get_errno()}")
# These are on the seccomp deny-list: with arguments the kernel would otherwise accept (or
# reject with another errno), only the filter answers EPERM.
import os

SYS_bpf, SYS_io_uring_setup, SYS_keyctl, SYS_setns, SYS_add_key = 321, 425, 250, 308, 248
KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING = 0, -2
params = ctypes.create_string_buffer(120)
ns = os.open("/proc/self/ns/uts", os.O_RDONLY)
for name, nr, args in [("bpf", SYS_bpf, (0, None, 0)),
                       ("io_uring_setup", SYS_io_uring_setup, (8, params)),
                       ("keyctl", SYS_keyctl, (KEYCTL_GET_KEYRING_ID, KEY_SPEC_PROCESS_KEYRING, 1)),
                       ("add_key", SYS_add_key, (b"user", b"toolsmith", b"x", 1, KEY_SPEC_PROCESS_KEYRING)),
                       ("setns", SYS_setns, (ns, 0))]:
    rc = libc.syscall(nr, *args)
    errno = ctypes.get_errno()
    if rc >= 0:
        print(f"ESCAPED: {name} returned {rc}")
    elif errno != 1:
        print(f"ESCAPED: {name} was not filtered (errno {errno}, not EPERM)")
    else:
        print(f"blocked: {name}: EPERM")
