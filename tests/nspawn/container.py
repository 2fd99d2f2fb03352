"""A throwaway systemd container for tests: boot, run commands, read the
journal, power off.

    root (cached, read-only)        systemd-nspawn --boot --volatile=overlay
    ~/.cache/.../nspawn-root-*  -->   PID 1: systemd  (changes go to a tmpfs)
                                        ^
    the test, on the host  --nsenter--+  (systemctl, journalctl, install.sh)
                           --connect--> /proc/<leader>/root/run/.../ei.sock

There is no systemd on the host (so no machined, no ``machinectl`` or
``systemd-run -M``): the container runs with ``--register=no --keep-unit``,
and commands enter it with ``nsenter --target <leader> --all``, where the
leader is the container's PID 1 as the host sees it. Host processes reach
files inside through ``/proc/<leader>/root``, Unix sockets included.

Powering off: SIGTERM to systemd-nspawn makes it ask the container's
systemd for a clean poweroff (well under a second here). To end it at once
(a test runner's timeout, or a poweroff that hangs), SIGKILL the container's
PID 1: its PID namespace dies with it, so nothing started inside outlives
it, and systemd-nspawn exits.
"""

import json
import os
import shutil
import signal
import subprocess
import time

NSPAWN = shutil.which("systemd-nspawn")
NSENTER = shutil.which("nsenter")
# What commands inside see: a clean environment, not the test's.
INSIDE_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BOOT_TIMEOUT = 60.0
POWEROFF_TIMEOUT = 30.0


def cannot_run_reason():
    """Why this machine cannot run systemd-nspawn at all, or None.

    Only these are reasons to skip; anything else that fails is a failure.
    """
    if os.geteuid() != 0:
        return "systemd-nspawn needs root"
    if NSPAWN is None or NSENTER is None:
        return ("systemd-nspawn or nsenter is not installed (Debian packages "
                "systemd-container and util-linux; bazel/install_deps.sh installs them)")
    with open("/proc/self/status") as f:
        caps = [line.split()[1] for line in f if line.startswith("CapEff:")]
    if not caps or not int(caps[0], 16) & (1 << 21):  # CAP_SYS_ADMIN
        return "no CAP_SYS_ADMIN: systemd-nspawn cannot make namespaces or mounts"
    if not os.access("/sys/fs/cgroup", os.W_OK) and not any(
            os.access(os.path.join("/sys/fs/cgroup", d), os.W_OK)
            for d in ("unified", "systemd")):
        return "/sys/fs/cgroup is not writable: systemd cannot run as PID 1 in a container"
    with open("/proc/filesystems") as f:
        if "overlay" not in f.read():
            return "the kernel has no overlayfs, which --volatile=overlay needs"
    return None


def _parent_pid(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def _children(pid):
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if _parent_pid(name) == pid:
                    found.append(int(name))
            except (OSError, IndexError, ValueError):
                pass
    return found


class Container:
    """One booted container on ``root``, with ``binds`` (host path ->
    path inside, read-only). The overlay keeps ``root`` unchanged."""

    def __init__(self, root, name, binds, log_path):
        self.root = root
        self.name = name
        self.binds = binds
        self.log_path = log_path
        self.process = None
        self.leader = None
        self.pid_namespace = None

    def boot(self):
        """Start systemd-nspawn and wait until the container's systemd has
        finished booting. Raises AssertionError (with the console) if not."""
        command = [NSPAWN, "--quiet", "--boot", "--register=no", "--keep-unit",
                   "--volatile=overlay", "--private-network", "--console=pipe",
                   f"--machine={self.name}", f"--directory={self.root}"]
        command += [f"--bind-ro={host}:{inside}" for host, inside in self.binds.items()]
        with open(self.log_path, "wb") as log:
            # Same process group as the test: a test runner's kill of the
            # group reaches systemd-nspawn too, which then powers off.
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL,
                                            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + BOOT_TIMEOUT
        while self.leader is None:
            self._check_alive(deadline, "the container's PID 1")
            children = [p for p in _children(self.process.pid) if self._comm(p) == "systemd"]
            self.leader = children[0] if children else None
            time.sleep(0.05)
        self.pid_namespace = os.readlink(f"/proc/{self.leader}/ns/pid")
        while True:
            self._check_alive(deadline, "systemd to finish booting")
            state = self.run("systemctl", "is-system-running", "--wait", check=False,
                             timeout=BOOT_TIMEOUT).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.1)
        if state != "running":
            failed = self.run("systemctl", "--failed", "--no-pager", check=False).stdout
            raise AssertionError(f"the container booted {state}:\n{failed}")
        return self

    def _check_alive(self, deadline, waiting_for):
        if self.process.poll() is not None:
            raise AssertionError(f"systemd-nspawn exited with {self.process.returncode} "
                                 f"while waiting for {waiting_for}:\n{self.console()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {waiting_for}:\n{self.console()}")

    @staticmethod
    def _comm(pid):
        try:
            with open(f"/proc/{pid}/comm") as f:
                return f.read().strip()
        except OSError:
            return None

    def console(self):
        """What the container printed on its console so far."""
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()[-4000:]

    def run(self, *command, check=True, timeout=60, env=(), background=False):
        """Run ``command`` inside the container (all its namespaces) as
        root with a clean environment plus ``env`` ("NAME=value" strings).
        Returns the CompletedProcess, or the Popen with ``background``."""
        argv = [NSENTER, "--target", str(self.leader), "--all",
                "env", "-i", INSIDE_PATH, *env, *command]
        if background:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(command)} exited with {result.returncode} "
                                 f"in the container:\n{result.stdout}{result.stderr}")
        return result

    def path(self, inside):
        """The host's path to ``inside`` (an absolute path in the container)."""
        return f"/proc/{self.leader}/root{inside}"

    def write(self, inside, text, mode=0o644):
        """Write a file inside the container (into the overlay)."""
        path = self.path(inside)
        os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def journal_mark(self):
        """The newest journal entry's time, for ``journal(after=)``.

        Not a cursor: journalctl 252 finds nothing with --after-cursor and
        -p together. The container has one boot and shares the host's
        monotonic clock, so the entries' monotonic times order them."""
        out = self.run("journalctl", "-n", "1", "-o", "json", "--no-pager").stdout
        return int(json.loads(out.splitlines()[-1])["__MONOTONIC_TIMESTAMP"])

    def journal(self, unit, after=None, priority=None):
        """Entries (dicts of journal fields) about ``unit``, newer than the
        mark ``after``, at ``priority`` or more urgent (``journalctl -p``)."""
        command = ["journalctl", "-u", unit, "-o", "json", "--no-pager"]
        if priority:
            command += ["-p", priority]
        out = self.run(*command).stdout
        entries = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        return [e for e in entries
                if after is None or int(e["__MONOTONIC_TIMESTAMP"]) > after]

    def processes(self):
        """(host pid, argv, /proc/PID/cgroup text) of every process in the
        container's PID namespace."""
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                if os.readlink(f"/proc/{name}/ns/pid") != self.pid_namespace:
                    continue
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
                with open(f"/proc/{name}/cgroup") as f:
                    cgroup = f.read()
            except OSError:
                continue  # it ended while we looked
            found.append((int(name), argv, cgroup))
        return found

    def poweroff(self):
        """Power the container off cleanly and wait for systemd-nspawn;
        kill it if that takes longer than POWEROFF_TIMEOUT. Idempotent."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(POWEROFF_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self):
        """End the container at once: SIGKILL to its PID 1 ends its whole
        PID namespace, and systemd-nspawn exits with it (or is killed)."""
        if self.leader is not None:
            try:
                os.kill(self.leader, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.process is not None:
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def leftovers(self):
        """Host pids still in the container's PID namespace (none after a
        poweroff)."""
        return [pid for pid, _, _ in self.processes()] if self.pid_namespace else []
