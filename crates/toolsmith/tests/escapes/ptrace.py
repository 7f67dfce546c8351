# Attach to or read the memory of other processes.
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)
PTRACE_ATTACH, PTRACE_TRACEME = 16, 0
for pid in [os.getppid(), 1]:
    if libc.ptrace(PTRACE_ATTACH, pid, None, None) == 0:
        print(f"ESCAPED: ptrace attached to {pid}")
    else:
        print(f"blocked: ptrace({pid}): errno {ctypes.get_errno()}")
if libc.ptrace(PTRACE_TRACEME, 0, None, None) == 0:
    print("ESCAPED: PTRACE_TRACEME")
elif ctypes.get_errno() != 1:
    print(f"ESCAPED: ptrace was not filtered (errno {ctypes.get_errno()}, not EPERM)")


class IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


buf = ctypes.create_string_buffer(64)
local = IoVec(ctypes.cast(buf, ctypes.c_void_p), 64)
remote = IoVec(0x400000, 64)
# Our own memory: only the seccomp filter can refuse that.
own = ctypes.create_string_buffer(b"secret", 64)
remote = IoVec(ctypes.cast(own, ctypes.c_void_p), 64)
n = libc.process_vm_readv(os.getpid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
if n > 0:
    print(f"ESCAPED: process_vm_readv read {n} bytes")
elif ctypes.get_errno() != 1:
    print(f"ESCAPED: process_vm_readv was not filtered (errno {ctypes.get_errno()}, not EPERM)")
else:
    print("blocked: process_vm_readv: EPERM")
