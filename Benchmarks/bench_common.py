"""Helpers shared by the paas-only benchmarks (control.py, resilience.py)."""
import os, socket, subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build_fixture(name, work):
    """Compiles Tests/Fixtures/NAME.c into WORK and returns the executable's path."""
    out = os.path.join(work, name)
    subprocess.check_call(["cc", "-O2", "-o", out, os.path.join(ROOT, "Tests", "Fixtures", name + ".c")])
    return out


def accepts(port):
    """Whether 127.0.0.1:PORT accepts a TCP connection."""
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def cpu_ticks(pid):
    """User + system CPU of PID, in clock ticks (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def children(pid):
    """The children of PID, from /proc/PID/task/*/children."""
    out = []
    for tid in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
            out += [int(x) for x in f.read().split()]
    return out


def guardian_and_self_ticks(pid):
    """CPU ticks of paas and of its guardian process."""
    guardians = [c for c in children(pid) if open("/proc/%d/comm" % c).read().strip() == "paas-guardian"]
    return cpu_ticks(pid) + sum(cpu_ticks(g) for g in guardians)
