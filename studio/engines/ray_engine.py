"""Shards scored as Ray tasks: on a cluster (``address``), or on a Ray started on this machine.

The classifier version's files go into Ray's object store once per run; each shard's Parquet
bytes go with its task, so the workers need no shared disk, only the studio installed (the same
version: the driver checks what every worker reports). Ray is imported on the first run.

A Ray started here (no address, or ``"local"``) takes 13-22 s to start and ~1.6 GB across its
processes; the engine shuts it down when closed, and keeps it between runs until then.
Connecting to a cluster leaves the cluster running.

Example::

    with RayEngine(address="ray://head:10001") as engine, project.store() as store:
        report = engine.score(project, store)
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from studio.engines.shards import SHARD_ROWS, ShardEngine, score_shard
from studio.text import abbreviated, visible

LOCAL = (None, "", "local")


def host_port(address: str) -> tuple[str, int]:
    """A cluster address's host and port, or ConnectionError when it is not one."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:10001, an IPv6 host
    # a host name is at most 253 characters; a longer "address" is a paste gone wrong
    if not host or not (port.isascii() and port.isdigit()) or len(host) > 253:
        raise ConnectionError(
            f"{shown(address)} is not a Ray address (ray://host:10001, host:6379 or auto)"
        )
    if not 0 < int(port) < 65536:
        raise ConnectionError(f"{shown(address)}: a port is a number from 1 to 65535")
    return host, int(port)


# a gRPC server (a Ray head's GCS and its client server are both) answers the HTTP/2 client
# preface with a SETTINGS frame: 9 bytes whose fourth, the frame type, is 4
HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
SETTINGS = 4


def reachable(address: str, timeout: float = 5.0) -> None:
    """Fail in seconds, not minutes, when a cluster's host:port does not answer as a Ray head
    (Ray itself retries for minutes, and waits without end on a port that accepts and never
    answers): the port must speak HTTP/2, know the Ray service of its kind (GCS, or the client
    server behind ray://), and, when it asks for a token, the studio must be set to send one.
    ``auto`` finds the address itself: not checked."""
    if address == "auto":
        return
    host, port = host_port(address)
    # a TLS cluster answers a TLS handshake, not HTTP/2: reached only, Ray checks the rest
    tls = os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true")
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            if tls:
                return
            conn.settimeout(timeout)
            conn.sendall(HTTP2_PREFACE)
            head = conn.recv(9)
    except TimeoutError as exc:
        raise _silent(address, timeout) from exc
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConnectionError(
            f"cannot reach the Ray cluster at {shown(address)}: {reason}"
        ) from exc
    if len(head) < 4 or head[3] != SETTINGS:
        raise _not_ray(address)
    _ask_ray(address, host, port, timeout)


def _silent(address: str, timeout: float) -> ConnectionError:
    return ConnectionError(f"the Ray cluster at {shown(address)} did not answer in {timeout:g} s")


def _not_ray(address: str) -> ConnectionError:
    return ConnectionError(
        f"{shown(address)} answers, but not as a Ray cluster: check the host and the port "
        "(the head's GCS port, 6379 by default, or ray:// and its client port, 10001)"
    )


def _ask_ray(address: str, host: str, port: int, timeout: float) -> None:
    """Call one method of the Ray service the port should serve and accept only Ray's answers:
    a GCS replies with its cluster id, a client server (behind ray://) with NOT_FOUND to an
    empty request (or a reply), a head that wants a token with UNAUTHENTICATED. Anything else
    (another gRPC server, one that replies junk or fails the call) is no Ray head: Ray itself,
    pointed at one, retries for minutes."""
    import grpc

    client = address.startswith("ray://")
    method = (
        "/ray.rpc.RayletDriver/ClusterInfo"
        if client
        else "/ray.rpc.NodeInfoGcsService/GetClusterId"
    )
    target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with grpc.insecure_channel(target) as channel:
        try:
            reply = channel.unary_unary(method)(b"", timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code()
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                raise _silent(address, timeout) from exc
            if code == grpc.StatusCode.UNAUTHENTICATED:
                if token_mode():
                    return  # Ray sends the token
                # Ray, without a token, tries for 20-30 s and then blames the connection
                raise ConnectionError(
                    f"the Ray cluster at {shown(address)} asks for a token: {TOKEN_HOWTO}"
                ) from exc
            if client and code == grpc.StatusCode.NOT_FOUND:
                return
            raise _not_ray(address) from exc
    if not client and not _cluster_id(reply):
        raise _not_ray(address)


def _cluster_id(reply: bytes) -> bytes:
    """The cluster id in a GCS's GetClusterId reply, or b"" when the bytes are no such reply."""
    from google.protobuf.message import DecodeError
    from ray.core.generated.gcs_service_pb2 import GetClusterIdReply

    try:
        return GetClusterIdReply.FromString(reply).cluster_id
    except DecodeError:
        return b""


def token_mode() -> bool:
    return os.environ.get("RAY_AUTH_MODE", "").lower() == "token"


# a cluster started by `ray start` asks for a token (Ray's default since 2.5x), and a driver
# sends one only when told to
TOKEN_HOWTO = (
    "set RAY_AUTH_MODE=token where the studio runs, with the cluster's token in RAY_AUTH_TOKEN "
    "or ~/.ray/auth_token"
)
AUTH_HINT = f" (if the cluster asks for a token, as one started by `ray start` does, {TOKEN_HOWTO})"


def shown(address: str) -> str:
    return visible(abbreviated(address, 80))


class RayEngine(ShardEngine):
    """Score a project's documents as Ray tasks, one task per Parquet shard."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        num_cpus: int | None = None,
        shard_rows: int = SHARD_ROWS,
    ) -> None:
        if address not in LOCAL and address != "auto":
            host_port(address)  # a mistyped address is refused even when nothing is left to do
        self.address, self.num_cpus, self.shard_rows = address, num_cpus, shard_rows
        self.ray: Any = None
        self.started = False

    def connect(self) -> Any:
        """Ray, initialised: a cluster at ``address``, else a Ray of this machine."""
        if self.ray is not None:
            return self.ray
        import ray

        if not ray.is_initialized():
            local = self.address in LOCAL
            options: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,  # not its start-up notices on the CLI's stderr
                "runtime_env": {"env_vars": {"HF_HUB_OFFLINE": "1"}},
            }
            if local:
                options["num_cpus"] = self.num_cpus
            else:
                reachable(self.address)
                options["address"] = self.address
            try:
                ray.init(**options)
            except Exception as exc:  # Ray raises many kinds; the curator needs one line
                where = "a local Ray" if local else f"the Ray cluster at {shown(self.address)}"
                hint = "" if local or token_mode() else AUTH_HINT
                raise ConnectionError(f"cannot start or reach {where}: {exc}{hint}") from exc
            self.started = True
        self.ray = ray
        return ray

    @contextmanager
    def open_pool(self, files: dict[str, bytes], version: str) -> Iterator[RayPool]:
        yield RayPool(self.connect(), files, version)

    def close(self) -> None:
        if self.started and self.ray is not None:
            self.ray.shutdown()
        self.ray, self.started = None, False

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RayPool:
    """A :class:`studio.engines.shards.ShardPool` over Ray tasks."""

    name = "ray"

    def __init__(self, ray: Any, files: dict[str, bytes], version: str) -> None:
        self.ray = ray
        self.parallelism = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._files = ray.put(files)
        self._version = version
        self._remote = ray.remote(num_cpus=1, max_retries=1)(score_shard)

    def submit(self, shard: Path) -> Any:
        return self._remote.remote(self._files, self._version, shard.read_bytes())

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        return done

    def result(self, handle: Any) -> dict[str, Any]:
        return self.ray.get(handle)

    def cancel(self, handles: list[Any]) -> None:
        # force: the worker process ends. A plain cancel raises KeyboardInterrupt inside the
        # task, and one that lands while the task is importing scikit-learn leaves that worker
        # with half-imported modules that fail the next shard it is given (seen in CI:
        # NameError inside scipy.ndimage). Shards are written here, from results: a killed
        # task loses nothing but its own unfinished shard, which a rerun scores.
        for h in handles:
            with contextlib.suppress(Exception):  # finished or lost already: nothing to stop
                self.ray.cancel(h, force=True)
