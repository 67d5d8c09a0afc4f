"""Tests of handkp.deploy.trtexec (the log parser, on two real logs) and handkp.deploy.jetson
(the Jetson-over-SSH path).

The SSH tests start a REAL OpenSSH server (`sshd`) on 127.0.0.1 with keys generated here, and
talk to it with the system `ssh` client, exactly as a deployment would talk to a Jetson.
On the "remote" side, `trtexec` is tests/fixtures/standin_trtexec.sh: a STAND-IN for NVIDIA's
trtexec (which cannot run without an NVIDIA GPU). It writes an engine file and prints a real
trtexec log from tests/fixtures/trtexec/. Nothing about ssh itself is mocked: faults are real
(server stopped, key refused, command failing, connection cut mid-copy).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from conftest import FIXTURES

from handkp.deploy.jetson import JetsonTarget, RemoteError, classify_ssh_failure
from handkp.deploy.trtexec import TrtexecLogError, parse_trtexec_log

LOG_10_9 = FIXTURES / "trtexec" / "trtexec-10.9.log"
LOG_8X = FIXTURES / "trtexec" / "trtexec-8.x-fp16.log"
STANDIN_TRTEXEC = FIXTURES / "standin_trtexec.sh"


# ============================================================================ parser, real logs


def test_parse_trtexec_10_9_log():
    m = parse_trtexec_log(LOG_10_9.read_text())
    assert m["throughput_qps"] == 691.435
    assert (m["latency_min_ms"], m["latency_max_ms"], m["latency_mean_ms"], m["latency_median_ms"]) == (
        1.4209,
        3.047,
        1.48372,
        1.43823,
    )
    assert (m["latency_p90_ms"], m["latency_p95_ms"], m["latency_p99_ms"]) == (1.45624, 1.71796, 2.61597)
    assert (m["gpu_compute_mean_ms"], m["gpu_compute_median_ms"], m["gpu_compute_p99_ms"]) == (
        1.44357,
        1.39775,
        2.57642,
    )
    assert (m["gpu_compute_p90_ms"], m["gpu_compute_p95_ms"]) == (1.40308, 1.67834)
    assert (m["h2d_mean_ms"], m["h2d_p99_ms"]) == (0.0362824, 0.0616455)
    assert (m["d2h_min_ms"], m["d2h_median_ms"]) == (0.00286865, 0.00366211)
    assert (m["enqueue_mean_ms"], m["enqueue_p95_ms"]) == (0.263621, 0.311768)
    assert (m["total_host_walltime_s"], m["total_gpu_compute_s"]) == (3.0039, 2.9983)
    assert m["tensorrt_version"] == "10.9.0"
    assert not any(k.startswith("end_to_end") for k in m)  # 10.9 prints no End-to-End line
    assert all(isinstance(v, float) for k, v in m.items() if k != "tensorrt_version")


def test_parse_trtexec_8x_log():
    m = parse_trtexec_log(LOG_8X.read_text())
    assert m["throughput_qps"] == 29.5527
    assert (
        m["latency_min_ms"],
        m["latency_max_ms"],
        m["latency_mean_ms"],
        m["latency_median_ms"],
        m["latency_p99_ms"],
    ) == (34.2395, 36.4373, 34.8425, 34.7981, 36.4373)
    assert (m["end_to_end_mean_ms"], m["end_to_end_median_ms"], m["end_to_end_p99_ms"]) == (34.8538, 34.8093, 36.4438)
    assert (m["gpu_compute_mean_ms"], m["gpu_compute_median_ms"], m["gpu_compute_p99_ms"]) == (32.3422, 32.2915, 33.877)
    assert (m["h2d_mean_ms"], m["d2h_mean_ms"], m["d2h_max_ms"]) == (1.53397, 0.966306, 1.01001)
    assert m["total_host_walltime_s"] == 3.07924
    # 8.x prints only percentile(99%) and no "&&&& PASSED" line here: nothing is invented.
    assert not any(k.endswith(("_p90_ms", "_p95_ms")) for k in m)
    assert "tensorrt_version" not in m


def test_parse_without_summary_raises():
    text = LOG_10_9.read_text()
    before_summary = text[: text.index("=== Performance summary ===")]
    with pytest.raises(TrtexecLogError, match="Performance summary"):
        parse_trtexec_log(before_summary)
    with pytest.raises(TrtexecLogError, match="Performance summary"):
        parse_trtexec_log("")
    with pytest.raises(TrtexecLogError, match="FAILED"):
        parse_trtexec_log("[E] Failed to parse onnx file\n&&&& FAILED TensorRT.trtexec [TensorRT v100900]\n")


@pytest.mark.parametrize(
    "code, stderr, kind",
    [
        (255, "ssh: connect to host 10.0.0.9 port 22: Connection refused\r\n", "unreachable"),
        (255, "ssh: Could not resolve hostname jetson: Name or service not known\r\n", "unreachable"),
        (255, "jetson@10.0.0.9: Permission denied (publickey).\r\n", "auth"),
        (255, "Host key verification failed.\r\n", "host-key"),
        (255, "Connection to 10.0.0.9 closed by remote host.\r\n", "connection-lost"),
        (1, "some error\n", "command"),
    ],
)
def test_classify_ssh_failure(code, stderr, kind):
    assert classify_ssh_failure(code, stderr)[0] == kind


def test_ssh_command_keeps_host_key_checking_on():
    t = JetsonTarget(host="jetson.local", user="nvidia", port=2222, key="~/k", remote_dir="e", trtexec="t")
    argv = t.ssh_command("true")
    assert argv[0] == "ssh" and "-F" not in argv  # ~/.ssh/config is honoured unless a config is given
    joined = " ".join(argv)
    for option in ("StrictHostKeyChecking=yes", "BatchMode=yes", "IdentitiesOnly=yes", "-p 2222"):
        assert option in joined
    assert argv[-2:] == ["nvidia@jetson.local", "true"]
    t2 = JetsonTarget(host="h", known_hosts="/kh", ssh_config="/cfg")
    joined2 = " ".join(t2.ssh_command("true"))
    assert "-F /cfg" in joined2 and "UserKnownHostsFile=/kh" in joined2


# ============================================================================ a real sshd

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
needs_sshd = pytest.mark.skipif(
    SSHD is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None,
    reason="OpenSSH server not installed (`sshd` missing; CI: apt-get install openssh-server openssh-client)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "handkp-test", "-f", str(path)],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return path


def descendants(pid: int) -> list[int]:
    """All processes below `pid` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class SshServer:
    """An OpenSSH server on 127.0.0.1 with its own config, host key and authorized key."""

    def __init__(self, workdir: Path, host_key: Path, authorized_key: Path):
        self.workdir = workdir
        self.host_key = host_key
        self.authorized_keys = workdir / "authorized_keys"
        shutil.copy(authorized_key, self.authorized_keys)
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> SshServer:
        user = pwd.getpwuid(os.geteuid()).pw_name
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir
        for _ in range(3):  # a free port can be taken between probing and binding: retry
            self.port = free_port()
            cfg = self.workdir / "sshd_config"
            cfg.write_text(
                "\n".join(
                    [
                        f"Port {self.port}",
                        "ListenAddress 127.0.0.1",
                        f"HostKey {self.host_key}",
                        "PidFile none",
                        f"AuthorizedKeysFile {self.authorized_keys}",
                        "PubkeyAuthentication yes",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "UsePAM no",
                        "StrictModes no",
                        "PermitRootLogin prohibit-password" if user == "root" else "PermitRootLogin no",
                        f"AllowUsers {user}",
                        "MaxStartups 50",
                        "LogLevel VERBOSE",
                        "",
                    ]
                )
            )
            self.log = self.workdir / f"sshd-{self.port}.log"
            with open(self.log, "wb") as log:
                self.proc = subprocess.Popen(
                    [SSHD, "-D", "-e", "-f", str(cfg)], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
                )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                if "Server listening on" in self.log.read_text(errors="replace"):
                    return self
                time.sleep(0.02)
            self.stop()
        raise RuntimeError(f"sshd did not start:\n{self.log.read_text(errors='replace')}")

    def kill_sessions(self) -> None:
        """Kill every per-connection sshd process (and what runs under it); the server keeps listening."""
        for pid in descendants(self.proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.kill_sessions()
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class CuttingProxy:
    """A TCP relay in front of sshd that interrupts one connection once N bytes went one way.

    action "drop": close both sides there (the link goes down mid-transfer);
    action "hold": stop relaying, set `held`, and go on once `release` is set (the test kills
    the server's session meanwhile).
    """

    def __init__(self, target_port: int, direction: str, after_bytes: int, action: str):
        assert direction in ("to-server", "to-client") and action in ("drop", "hold")
        self.target_port, self.direction, self.after_bytes, self.action = target_port, direction, after_bytes, action
        self.held, self.release = threading.Event(), threading.Event()
        self.fired = False
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, "to-server"), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, "to-client"), daemon=True).start()

    def _fire(self) -> bool:
        with self._lock:
            fire, self.fired = not self.fired, True
            return fire

    @staticmethod
    def _shut(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _pump(self, src, dst, direction):
        total = 0
        try:
            while data := src.recv(65536):
                total += len(data)
                if direction == self.direction and total >= self.after_bytes and self._fire():
                    if self.action == "drop":
                        break
                    self.held.set()
                    self.release.wait(30)
                dst.sendall(data)
        except OSError:
            pass
        self._shut(src, dst)

    def close(self):
        self.release.set()
        self.listener.close()
        self._shut(*self._sockets)
        for s in self._sockets:
            s.close()


class SshWorld:
    """Keys, a running sshd and a remote side with the stand-in trtexec; makes JetsonTargets."""

    def __init__(self, root: Path):
        self.root = root
        keys = root / "keys"
        keys.mkdir()
        self.host_key = keygen(keys / "host_ed25519")
        self.client_key = keygen(keys / "client_ed25519")
        self.wrong_key = keygen(keys / "wrong_ed25519")
        self.empty_ssh_config = root / "ssh_config"  # so the machine's ~/.ssh/config plays no part
        self.empty_ssh_config.write_text("")
        # The device's tools: the stand-in trtexec with the real logs it prints.
        bin_dir = root / "device-bin"
        (bin_dir / "trtexec").mkdir(parents=True)
        self.trtexec = bin_dir / "trtexec-standin"
        shutil.copy(STANDIN_TRTEXEC, self.trtexec)
        self.trtexec.chmod(0o755)
        for log in (LOG_10_9, LOG_8X):
            shutil.copy(log, bin_dir / "trtexec" / log.name)
        self.servers: list[SshServer] = []
        self.server = self.new_server("main")

    def new_server(self, name: str) -> SshServer:
        workdir = self.root / f"sshd-{name}"
        workdir.mkdir()
        server = SshServer(workdir, self.host_key, self.client_key.with_suffix(".pub"))
        self.servers.append(server)
        return server.start()

    def stop_all(self) -> None:
        for server in self.servers:
            server.stop()

    def known_hosts_for(self, port: int) -> Path:
        path = self.root / f"known_hosts_{port}"
        key_type, key_b64 = self.host_key.with_suffix(".pub").read_text().split()[:2]
        path.write_text(f"[127.0.0.1]:{port} {key_type} {key_b64}\n")
        return path

    def target(self, remote_dir: Path, port: int | None = None, **overrides) -> JetsonTarget:
        port = port or self.server.port
        fields = dict(
            host="127.0.0.1",
            user=pwd.getpwuid(os.geteuid()).pw_name,
            port=port,
            key=str(self.client_key),
            remote_dir=str(remote_dir),
            trtexec=str(self.trtexec),
            known_hosts=str(self.known_hosts_for(port)),
            ssh_config=str(self.empty_ssh_config),
            connect_timeout_s=5,
        )
        fields.update(overrides)
        return JetsonTarget(**fields)


@pytest.fixture(scope="module")
def ssh_world(tmp_path_factory):
    if SSHD is None:
        pytest.skip("OpenSSH server not installed (`sshd` missing)")
    try:
        pwd.getpwuid(os.geteuid())
    except KeyError:
        pytest.skip("the current uid has no passwd entry, so sshd cannot log it in")
    world = SshWorld(tmp_path_factory.mktemp("ssh"))
    try:
        yield world
    finally:
        world.stop_all()


def fake_onnx(path: Path, *directives: str, random_kib: int = 0) -> Path:
    """A stand-in "ONNX" file: directive lines for the stand-in trtexec, then bytes."""
    body = "".join(f"STANDIN {d}\n" for d in directives).encode() + b"fake onnx model bytes\n"
    path.write_bytes(body + os.urandom(random_kib * 1024))
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ============================================================================ the Jetson path


@needs_sshd
@pytest.mark.parametrize("log, fp16", [(LOG_10_9, True), (LOG_8X, False)])
def test_build_engine_round_trip(ssh_world, tmp_path, log, fp16):
    remote = tmp_path / "device" / "engines"
    onnx = fake_onnx(tmp_path / "heatmap.onnx", f"log={log.name}")
    engine = tmp_path / "out" / "heatmap.engine"
    target = ssh_world.target(remote)

    metrics = target.build_engine(onnx, engine, fp16=fp16, extra_args=["--verbose"])

    assert metrics == parse_trtexec_log(log.read_text())
    assert engine.read_bytes() == (remote / "heatmap.engine").read_bytes()  # the engine came back intact
    assert engine.read_bytes().startswith(f"STAND-IN ENGINE fp16={'yes' if fp16 else 'no'}\n".encode())
    assert (remote / "heatmap.onnx").read_bytes() == onnx.read_bytes()  # the onnx went over intact
    assert Path(f"{engine}.log").read_text() == log.read_text()  # the full trtexec log is kept
    assert leftovers(engine.parent) == ["heatmap.engine", "heatmap.engine.log"]  # no temporary files
    assert leftovers(remote) == ["heatmap.engine", "heatmap.onnx"]


@needs_sshd
def test_run_put_get(ssh_world, tmp_path):
    target = ssh_world.target(tmp_path / "device")
    assert target.run(["echo", "hello world"]) == "hello world\n"
    with pytest.raises(RemoteError) as err:
        target.run("echo boom >&2; exit 3", step="try a command")
    e = err.value
    assert (e.kind, e.step, e.returncode) == ("command", "try a command", 3)
    assert "boom" in str(e) and "127.0.0.1" in str(e)

    src = tmp_path / "a file with spaces.bin"
    src.write_bytes(os.urandom(300_000))
    remote_file = tmp_path / "device" / "sub dir" / "copy.bin"
    target.put(src, str(remote_file))
    assert remote_file.read_bytes() == src.read_bytes()
    back = tmp_path / "back" / "again.bin"
    target.get(str(remote_file), back)
    assert back.read_bytes() == src.read_bytes()
    assert leftovers(remote_file.parent) == ["copy.bin"] and leftovers(back.parent) == ["again.bin"]


@needs_sshd
def test_server_stopped_is_a_connect_error(ssh_world, tmp_path):
    server = ssh_world.new_server("stopped")
    target = ssh_world.target(tmp_path / "device", port=server.port)
    target.check_connection()  # it works while the server runs
    server.stop()
    engine = tmp_path / "out" / "m.engine"
    with pytest.raises(RemoteError) as err:
        target.build_engine(fake_onnx(tmp_path / "m.onnx"), engine)
    e = err.value
    assert (e.step, e.kind, e.returncode) == ("connect", "unreachable", 255)
    assert "127.0.0.1" in str(e) and "Connection refused" in str(e)
    assert not engine.exists() and leftovers(engine.parent) == []


@needs_sshd
def test_wrong_key_is_an_auth_error(ssh_world, tmp_path):
    target = ssh_world.target(tmp_path / "device", key=str(ssh_world.wrong_key))
    engine = tmp_path / "out" / "m.engine"
    with pytest.raises(RemoteError) as err:
        target.build_engine(fake_onnx(tmp_path / "m.onnx"), engine)
    e = err.value
    assert (e.step, e.kind) == ("connect", "auth")
    assert "Permission denied" in str(e) and "host 127.0.0.1" in str(e)
    assert not engine.exists()


@needs_sshd
def test_unknown_host_key_is_refused(ssh_world, tmp_path):
    empty = tmp_path / "known_hosts_empty"
    empty.write_text("")
    target = ssh_world.target(tmp_path / "device", known_hosts=str(empty))
    with pytest.raises(RemoteError) as err:
        target.check_connection()
    assert (err.value.step, err.value.kind) == ("connect", "host-key")
    assert "Host key verification failed" in str(err.value)


@needs_sshd
def test_missing_trtexec(ssh_world, tmp_path):
    missing = str(tmp_path / "no-tensorrt" / "bin" / "trtexec")
    target = ssh_world.target(tmp_path / "device", trtexec=missing)
    engine = tmp_path / "out" / "m.engine"
    with pytest.raises(RemoteError) as err:
        target.build_engine(fake_onnx(tmp_path / "m.onnx"), engine)
    assert err.value.kind == "trtexec-missing"
    assert f"trtexec not found at {missing} on host 127.0.0.1" in str(err.value)
    assert not engine.exists()


@needs_sshd
def test_trtexec_failing_shows_its_stderr(ssh_world, tmp_path):
    # The stand-in exits 1 with an error on stderr, as trtexec does on an ONNX it cannot parse.
    target = ssh_world.target(tmp_path / "device")
    engine = tmp_path / "out" / "m.engine"
    with pytest.raises(RemoteError) as err:
        target.build_engine(fake_onnx(tmp_path / "m.onnx", "fail"), engine)
    e = err.value
    assert (e.step, e.kind, e.returncode) == ("run trtexec", "command", 1)
    assert "Failed to parse onnx file" in e.stderr and "Failed to parse onnx file" in str(e)
    assert "host 127.0.0.1" in str(e)
    assert leftovers(engine.parent) == []  # neither engine nor log


@needs_sshd
def test_output_without_summary_leaves_nothing(ssh_world, tmp_path):
    target = ssh_world.target(tmp_path / "device")
    engine = tmp_path / "out" / "m.engine"
    with pytest.raises(RemoteError) as err:
        target.build_engine(fake_onnx(tmp_path / "m.onnx", "log=none"), engine)
    assert (err.value.step, err.value.kind) == ("parse trtexec output", "parse")
    assert "Performance summary" in str(err.value)
    assert leftovers(engine.parent) == []


@needs_sshd
def test_engine_copy_cut_off_midway(ssh_world, tmp_path):
    # The link drops after 2 MiB of a 16 MiB engine coming back.
    proxy = CuttingProxy(ssh_world.server.port, "to-client", after_bytes=2 << 20, action="drop")
    try:
        target = ssh_world.target(tmp_path / "device", port=proxy.port)
        engine = tmp_path / "out" / "m.engine"
        with pytest.raises(RemoteError) as err:
            target.build_engine(fake_onnx(tmp_path / "m.onnx", "engine-kib=16384"), engine)
    finally:
        proxy.close()
    e = err.value
    assert proxy.fired
    assert (e.step, e.kind, e.returncode) == ("copy engine back", "connection-lost", 255)
    assert "host 127.0.0.1" in str(e) and e.stderr.strip()
    assert leftovers(engine.parent) == []  # no partial engine, no temporary file, no log


@needs_sshd
def test_onnx_copy_cut_off_by_killing_the_session(ssh_world, tmp_path):
    # The upload is paused after 2 MiB of 16 MiB; meanwhile the server's session is killed.
    proxy = CuttingProxy(ssh_world.server.port, "to-server", after_bytes=2 << 20, action="hold")

    def kill_when_held():
        if proxy.held.wait(30):
            ssh_world.server.kill_sessions()
        proxy.release.set()

    killer = threading.Thread(target=kill_when_held, daemon=True)
    killer.start()
    remote = tmp_path / "device"
    try:
        target = ssh_world.target(remote, port=proxy.port)
        engine = tmp_path / "out" / "m.engine"
        with pytest.raises(RemoteError) as err:
            target.build_engine(fake_onnx(tmp_path / "m.onnx", random_kib=16384), engine)
    finally:
        proxy.close()
        killer.join(5)
    e = err.value
    assert proxy.held.is_set()
    assert (e.step, e.kind, e.returncode) == ("copy onnx to device", "connection-lost", 255)
    assert "host 127.0.0.1" in str(e) and e.stderr.strip()
    assert not engine.exists() and leftovers(engine.parent) == []
    assert [n for n in leftovers(remote) if ".part" in n] == []  # the partial upload was removed
