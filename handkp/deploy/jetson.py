"""The Jetson target: build a TensorRT engine on a remote device over OpenSSH.

Everything goes through the system OpenSSH client (`ssh`), so `~/.ssh/config`, keys and
known hosts work as they do in a terminal. Host keys are always checked
(`StrictHostKeyChecking=yes`); nothing here ever turns that off.

Files travel as a byte stream over `ssh … cat` (not scp/sftp, whose remote-path quoting differs
between OpenSSH versions). Each copy lands under a temporary name beside its destination, is
checked (size and sha256 against a remote `sha256sum`) and only then renamed into place.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import HandkpError
from ..core.io import atomic_path, sha256_file
from .trtexec import TrtexecLogError, parse_trtexec_log, tail

# --------------------------------------------------------------------------- SSH

SSH_FAILED = 255  # ssh's own exit status when the connection (not the remote command) failed

# (kind, what it means, stderr fragments) — the first match wins; checked only on exit 255.
_SSH_FAULTS = (
    (
        "host-key",
        "host key not known or changed (known_hosts)",
        (
            "host key verification failed",
            "remote host identification has changed",
            "host key is known for",
            "no matching host key",
        ),
    ),
    (
        "auth",
        "authentication refused (key not accepted)",
        ("permission denied", "too many authentication failures", "no more authentication methods"),
    ),
    (
        "unreachable",
        "host unreachable",
        (
            "connection refused",
            "connection timed out",
            "operation timed out",
            "no route to host",
            "network is unreachable",
            "could not resolve hostname",
            "name or service not known",
            "temporary failure in name resolution",
            "host is down",
        ),
    ),
    (
        "connection-lost",
        "connection lost",
        (
            "closed by remote host",
            "connection reset",
            "broken pipe",
            "connection closed by",
            "timeout, server",
            "client_loop",
            "kex_exchange_identification",
        ),
    ),
    (
        "ssh-config",
        "ssh could not start (configuration or key file)",
        (
            "bad configuration option",
            "can't open user config file",
            "no such file or directory",
            "invalid format",
            "load key",
        ),
    ),
)


class RemoteError(HandkpError):
    """A step on the remote device failed. `host`, `step`, `kind`, `returncode`, `stderr` say how.

    `kind` is one of: unreachable, auth, host-key, connection-lost, ssh-config, ssh (other ssh
    failure), command (remote command exited non-zero), trtexec-missing, transfer (copy
    incomplete or checksum mismatch), parse (no performance summary), local (local file problem).
    """

    def __init__(
        self,
        host: str,
        step: str,
        reason: str,
        *,
        kind: str = "command",
        returncode: int | None = None,
        stderr: str = "",
    ):
        self.host, self.step, self.reason, self.kind = host, step, reason, kind
        self.returncode, self.stderr = returncode, stderr
        message = f"{step} on host {host} failed: {reason}"
        if stderr.strip():
            message += "\nstderr (ssh and remote):\n" + stderr.rstrip()
        super().__init__(message)


def classify_ssh_failure(returncode: int, stderr: str) -> tuple[str, str]:
    """(kind, reason) for a failed `ssh` run: ssh's own faults exit 255, others are the command's."""
    if returncode != SSH_FAILED:
        return "command", f"remote command exited with status {returncode}"
    low = stderr.lower()
    for kind, meaning, fragments in _SSH_FAULTS:
        for fragment in fragments:
            if fragment in low:
                return kind, f"{meaning} (ssh exit 255: '{fragment}')"
    return "ssh", "ssh exited with status 255 (connection failed or the remote command exited 255)"


def _parse_size_and_sha(out: str) -> tuple[int, str]:
    """Read `wc -c < f; sha256sum < f` output: "123\\n<hex>  -"."""
    fields = out.split()
    if len(fields) < 2 or not fields[0].isdigit() or not re.fullmatch(r"[0-9a-f]{64}", fields[1]):
        raise ValueError(f"unexpected size/sha256 output: {out.strip()[:200]!r}")
    return int(fields[0]), fields[1]


def _remote_path(path: str) -> str:
    """A remote path for a shell command: '~/x' means relative to the login (home) folder."""
    path = str(path)
    if path == "~":
        return "."
    return path[2:] if path.startswith("~/") else path


def _q(path: str) -> str:
    return shlex.quote(_remote_path(path))


@dataclass
class JetsonTarget:
    """A remote device reached with the system `ssh`, where trtexec builds TensorRT engines.

    `user`, `port` and `key` may be None to take them from the ssh config (port 22 by default). `remote_dir` is
    where files go on the device (relative paths and '~/…' are under the login's home).
    `known_hosts` → UserKnownHostsFile; `ssh_config` → `ssh -F` (otherwise ~/.ssh/config).
    """

    host: str
    user: str | None = None
    port: int | None = None
    key: str | None = None
    remote_dir: str = "handkp-engine"
    trtexec: str = "/usr/src/tensorrt/bin/trtexec"
    known_hosts: str | None = None
    ssh_config: str | None = None
    connect_timeout_s: float = 10.0

    # ------------------------------------------------------------------ plumbing
    def ssh_command(self, remote_command: str) -> list[str]:
        """The `ssh` argv that runs `remote_command` (a shell string) on the device."""
        if not self.host or self.host.startswith("-"):
            raise ValueError(f"invalid host {self.host!r}")
        argv = ["ssh"]
        if self.ssh_config:
            argv += ["-F", os.path.expanduser(self.ssh_config)]
        if self.port:
            argv += ["-p", str(int(self.port))]
        if self.key:
            argv += ["-i", os.path.expanduser(self.key), "-o", "IdentitiesOnly=yes"]
        argv += [
            "-o",
            "BatchMode=yes",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            f"ConnectTimeout={max(1, int(round(self.connect_timeout_s)))}",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
        ]
        if self.known_hosts:
            argv += ["-o", f"UserKnownHostsFile={os.path.expanduser(self.known_hosts)}"]
        destination = f"{self.user}@{self.host}" if self.user else self.host
        return argv + ["--", destination, remote_command]

    def _check_local_files(self, step: str) -> None:
        for label, path in (("key", self.key), ("known_hosts", self.known_hosts), ("ssh_config", self.ssh_config)):
            if path and not os.path.isfile(os.path.expanduser(path)):
                raise RemoteError(
                    self.host, step, f"{label} file {path} does not exist (on this machine)", kind="local"
                )

    def _ssh_unchecked(
        self, remote_command: str, step: str, *, stdin=None, stdout=None, timeout_s: float | None = None
    ) -> subprocess.CompletedProcess:
        """Run `ssh` and return the finished process, whatever its exit status."""
        self._check_local_files(step)
        try:
            return subprocess.run(
                self.ssh_command(remote_command),
                stdin=stdin if stdin is not None else subprocess.DEVNULL,
                stdout=stdout if stdout is not None else subprocess.PIPE,
                stderr=subprocess.PIPE,
                timeout=timeout_s,
            )
        except FileNotFoundError as e:
            raise RemoteError(self.host, step, "the OpenSSH client `ssh` is not installed", kind="local") from e
        except subprocess.TimeoutExpired as e:
            stderr = (e.stderr or b"").decode("utf-8", "replace")
            raise RemoteError(
                self.host, step, f"timed out after {timeout_s} s", kind="connection-lost", stderr=stderr
            ) from e

    def _ssh(
        self, remote_command: str, step: str, *, stdin=None, stdout=None, timeout_s: float | None = None
    ) -> subprocess.CompletedProcess:
        """Run `ssh`; raise RemoteError (classified) when it exits non-zero."""
        proc = self._ssh_unchecked(remote_command, step, stdin=stdin, stdout=stdout, timeout_s=timeout_s)
        if proc.returncode != 0:
            stderr = proc.stderr.decode("utf-8", "replace")
            kind, reason = classify_ssh_failure(proc.returncode, stderr)
            raise RemoteError(self.host, step, reason, kind=kind, returncode=proc.returncode, stderr=stderr)
        return proc

    # ------------------------------------------------------------------ public operations
    def run(
        self, command: str | Sequence[str], step: str = "run remote command", timeout_s: float | None = None
    ) -> str:
        """Run a command on the device (a shell string, or an argv that gets quoted); return stdout."""
        if not isinstance(command, str):
            command = shlex.join(list(command))
        proc = self._ssh(command, step, timeout_s=timeout_s)
        return proc.stdout.decode("utf-8", "replace")

    def check_connection(self) -> None:
        """Open a session and run `true` (step "connect")."""
        self.run("true", step="connect", timeout_s=self.connect_timeout_s + 30)

    def remote_size_and_sha256(self, remote_path: str, step: str) -> tuple[int, str]:
        """(size in bytes, sha256 hex) of a file on the device."""
        out = self.run(f"wc -c < {_q(remote_path)} && sha256sum < {_q(remote_path)}", step=step)
        try:
            return _parse_size_and_sha(out)
        except ValueError as e:
            raise RemoteError(self.host, step, str(e), kind="transfer") from e

    def put(self, local_path: str | os.PathLike, remote_path: str, step: str = "copy to device") -> None:
        """Copy a local file to the device: to a temporary name, verify size + sha256, then rename."""
        local_path = Path(local_path)
        if not local_path.is_file():
            raise RemoteError(self.host, step, f"local file {local_path} does not exist", kind="local")
        size, sha = local_path.stat().st_size, sha256_file(local_path)
        remote_path = _remote_path(remote_path)
        tmp = f"{remote_path}.part-{uuid.uuid4().hex[:12]}"
        parent = os.path.dirname(remote_path) or "."
        cmd = f"mkdir -p {_q(parent)} && cat > {_q(tmp)} && wc -c < {_q(tmp)} && sha256sum < {_q(tmp)}"
        try:
            with open(local_path, "rb") as f:
                out = self._ssh(cmd, step, stdin=f).stdout.decode("utf-8", "replace")
            try:
                got_size, got_sha = _parse_size_and_sha(out)
            except ValueError as e:
                raise RemoteError(self.host, step, str(e), kind="transfer") from e
            if (got_size, got_sha) != (size, sha):
                raise RemoteError(
                    self.host,
                    step,
                    f"copy of {local_path} to {remote_path} is incomplete or corrupt: "
                    f"{got_size} bytes sha256 {got_sha} on the device, {size} bytes sha256 {sha} here",
                    kind="transfer",
                )
            self.run(f"mv -f {_q(tmp)} {_q(remote_path)}", step=step)
        except RemoteError:
            self._remove_remote_quietly(tmp)
            raise

    def get(self, remote_path: str, local_path: str | os.PathLike, step: str = "copy from device") -> None:
        """Copy a file from the device: to a temporary name beside `local_path`, verify, then rename."""
        local_path = Path(local_path)
        want_size, want_sha = self.remote_size_and_sha256(remote_path, step)
        with atomic_path(local_path) as tmp:
            with open(tmp, "wb") as f:
                self._ssh(f"cat {_q(remote_path)}", step, stdout=f)
            size, sha = tmp.stat().st_size, sha256_file(tmp)
            if (size, sha) != (want_size, want_sha):
                raise RemoteError(
                    self.host,
                    step,
                    f"copy of {remote_path} is incomplete or corrupt: {size} bytes sha256 {sha} here, "
                    f"{want_size} bytes sha256 {want_sha} on the device",
                    kind="transfer",
                )

    def _remove_remote_quietly(self, remote_path: str) -> None:
        try:
            self._ssh(f"rm -f {_q(remote_path)}", "clean up", timeout_s=self.connect_timeout_s + 20)
        except RemoteError:
            pass

    def check_trtexec(self) -> str:
        """Make sure trtexec is an executable on the device; return its path there."""
        step = "check trtexec"
        path = self.trtexec
        if "/" in path:
            probe = (
                f"if [ -f {_q(path)} ] && [ -x {_q(path)} ]; then echo ok; "
                f"elif [ -e {_q(path)} ]; then echo not-executable; else echo missing; fi"
            )
        else:  # a bare name: look it up on the remote PATH
            probe = f"command -v {shlex.quote(path)} || echo missing"
        answer = self.run(probe, step=step).strip()
        if answer == "missing" or not answer:
            raise RemoteError(
                self.host, step, f"trtexec not found at {path} on host {self.host}", kind="trtexec-missing"
            )
        if answer == "not-executable":
            raise RemoteError(
                self.host, step, f"trtexec at {path} on host {self.host} is not executable", kind="trtexec-missing"
            )
        return _remote_path(path) if answer == "ok" else answer.splitlines()[-1]

    def build_engine(
        self,
        onnx_path: str | os.PathLike,
        engine_path: str | os.PathLike,
        fp16: bool = True,
        extra_args: Sequence[str] = (),
    ) -> dict:
        """Build a TensorRT engine from `onnx_path` on the device; bring it back to `engine_path`.

        Writes trtexec's full output to `<engine_path>.log` and returns `parse_trtexec_log` of it.
        On any failure raises RemoteError and leaves neither engine nor log at the destination.
        """
        onnx_path, engine_path = Path(onnx_path), Path(engine_path)
        if not onnx_path.is_file():
            raise RemoteError(
                self.host, "copy onnx to device", f"local ONNX file {onnx_path} does not exist", kind="local"
            )
        log_path = engine_path.with_name(engine_path.name + ".log")
        remote_dir = _remote_path(self.remote_dir).rstrip("/") or "/"
        remote_onnx = f"{remote_dir}/{onnx_path.name}"
        remote_engine = f"{remote_dir}/{engine_path.name}"

        self.check_connection()
        trtexec = self.check_trtexec()
        self.run(f"mkdir -p {_q(remote_dir)} && rm -f {_q(remote_engine)}", step="prepare remote folder")
        self.put(onnx_path, remote_onnx, step="copy onnx to device")

        args = [trtexec, f"--onnx={_remote_path(remote_onnx)}", f"--saveEngine={_remote_path(remote_engine)}"]
        if fp16:
            args.append("--fp16")
        args += [str(a) for a in extra_args]
        step = "run trtexec"
        proc = self._ssh_unchecked(shlex.join(args), step)
        out = proc.stdout.decode("utf-8", "replace")
        err = proc.stderr.decode("utf-8", "replace")
        if proc.returncode != 0:
            kind, reason = classify_ssh_failure(proc.returncode, err)
            if kind == "command":
                reason = f"trtexec exited with status {proc.returncode}; last output lines:\n{tail(out)}"
            raise RemoteError(self.host, step, reason, kind=kind, returncode=proc.returncode, stderr=err)
        log_text = out if not err.strip() else f"{out.rstrip()}\n\n--- stderr ---\n{err}"
        try:
            metrics = parse_trtexec_log(out)
        except TrtexecLogError as e:
            raise RemoteError(self.host, "parse trtexec output", str(e), kind="parse", stderr=err) from e

        # Engine and log both land under temporary names first and are renamed only once both are
        # complete, the log first: never an engine without its log.
        with atomic_path(engine_path) as engine_tmp:
            with atomic_path(log_path) as log_tmp:
                self.get(remote_engine, engine_tmp, step="copy engine back")
                log_tmp.write_text(log_text, encoding="utf-8")
        return metrics
