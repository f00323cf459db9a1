"""A teacher that runs a GGUF model in-process with llama.cpp (llama-cpp-python).

The model loads once, on the first reply or on :meth:`LlamaCppTeacher.load`, off the UI thread
(the GUI calls both through run_op); one reply runs at a time (a llama.cpp context is not
thread-safe). The prompt is the GGUF's own chat template, rendered in llama-cpp-python's Jinja
sandbox, and tokens are drawn with ``Llama.generate`` so that counts are exact and cancel is
checked between tokens. A reply asked for with a JSON schema is drawn under a grammar built from
that schema (llama.cpp's own JSON-schema-to-GBNF converter), so every token keeps it valid JSON.
"""

from __future__ import annotations

import codecs
import functools
import json
import logging
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.teachers.base import (
    CancelFn,
    Completion,
    IncompleteReply,
    JsonSchema,
    Message,
    RestartFn,
    Sampling,
    TeacherError,
    TokenFn,
    clean_text,
)

log = logging.getLogger("studio.teachers")

GGUF_MAGIC = b"GGUF"
# the sampler settings llama-cpp-python's create_chat_completion uses, so that a reply through the
# studio is the reply the curator would get from llama-cpp-python itself
SAMPLER_DEFAULTS: dict[str, Any] = {
    "top_k": 40,
    "min_p": 0.05,
    "typical_p": 1.0,
    "repeat_penalty": 1.0,  # replaced by the request's Sampling.repeat_penalty
}
CHATML_FALLBACK = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True, slots=True)
class LlamaSettings:
    """How llama.cpp runs a local model; 1 thread is the fast, stable choice on 2 cores."""

    n_ctx: int = 4096
    n_threads: int = 1
    n_threads_batch: int = 1
    n_gpu_layers: int = 0


class LlamaCppTeacher:
    """A GGUF chat model in this process."""

    concurrency = 1  # one reply at a time: callers need not start more

    def __init__(self, path: Path | str, settings: LlamaSettings | None = None) -> None:
        self.path = Path(path)
        self.settings = settings or LlamaSettings()
        self.name = f"local:{self.path.name}"
        self._llm: Any = None
        self._formatter: Any = None
        self.template_source = ""  # "gguf" or "chatml (the GGUF has no chat template)"
        self._lock = threading.Lock()
        self._close_pending = False  # close() came while a reply ran: free the model after it

    # loading ------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the model (once); a :class:`TeacherError` says why it cannot."""
        with self._lock:
            self._close_pending = False
            self._load_locked()

    @property
    def loaded(self) -> bool:
        return self._llm is not None

    def _load_locked(self) -> None:
        if self._llm is not None:
            return
        check_gguf_file(self.path)
        try:
            from llama_cpp import Llama
        except ImportError as exc:  # pragma: no cover - the studio depends on it
            raise TeacherError("llama-cpp-python is not installed") from exc
        s = self.settings
        started = time.perf_counter()
        try:
            llm = Llama(
                model_path=str(self.path),
                n_ctx=s.n_ctx,
                n_threads=s.n_threads,
                n_threads_batch=s.n_threads_batch,
                n_gpu_layers=s.n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError, MemoryError) as exc:
            log.warning("llama.cpp refused %s: %s", self.path, exc)
            raise load_error(self.path, s.n_ctx, exc) from exc
        self._formatter = self._make_formatter(llm)
        self._llm = llm
        log.info("loaded %s in %.2f s", self.path.name, time.perf_counter() - started)

    def _make_formatter(self, llm: Any) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = llm.metadata.get("tokenizer.chat_template")
        if template:
            self.template_source = "gguf"
        else:
            template = CHATML_FALLBACK
            self.template_source = "chatml (the GGUF has no chat template)"
        eos, bos = llm.token_eos(), llm.token_bos()
        return Jinja2ChatFormatter(
            template=template,
            eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        )

    def info(self, cancelled: CancelFn | None = None) -> dict[str, Any]:  # noqa: ARG002
        """What the loaded model is, for ``teacher check`` and the settings dialog (a load
        cannot be stopped half-way: ``cancelled`` is the remote teacher's, looked at after)."""
        self.load()
        meta = self._llm.metadata
        return {
            "kind": "local",
            "name": self.name,
            "path": str(self.path),
            "model": meta.get("general.name", self.path.stem),
            "architecture": meta.get("general.architecture", ""),
            "context": self._llm.n_ctx(),
            "trained_context": self._llm._model.n_ctx_train(),
            "template": self.template_source,
            "threads": self.settings.n_threads,
            "gpu_layers": self.settings.n_gpu_layers,
        }

    def close(self) -> None:
        """Free the model now or, while a reply runs, as soon as it ends: closing the studio
        never waits for a reply (a later reply loads the model again)."""
        self._close_pending = True
        self._free_if_closed()

    def _free_if_closed(self) -> None:
        # a reply releases the lock, then looks at the flag; close() sets the flag, then tries
        # the lock: one of the two frees the model, whichever order they run in
        if self._close_pending and self._lock.acquire(blocking=False):
            try:
                self._close_pending = False
                if self._llm is not None:
                    self._llm.close()
                    self._llm = None
            finally:
                self._lock.release()

    # replies --------------------------------------------------------------------------------

    def prompt_tokens(self, messages: list[Message]) -> list[int]:
        """The messages rendered through the chat template and tokenized."""
        try:
            rendered = self._formatter(messages=messages)
        except Exception as exc:  # a template's own error (raise_exception, bad roles)
            raise TeacherError(f"the chat template refused the messages: {exc}") from exc
        return self._llm.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )

    def chat(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        on_token: TokenFn | None = None,
        cancelled: CancelFn | None = None,
        on_restart: RestartFn | None = None,  # noqa: ARG002 - a local reply never starts over
        json_schema: JsonSchema | None = None,
    ) -> Completion:
        grammar = json_grammar(json_schema) if json_schema is not None else None
        try:
            with self._lock:
                self._load_locked()
                return self._chat_locked(messages, sampling, on_token, cancelled, grammar)
        finally:
            self._free_if_closed()

    def _chat_locked(
        self,
        messages: list[Message],
        sampling: Sampling,
        on_token: TokenFn | None,
        cancelled: CancelFn | None,
        grammar: Any = None,
    ) -> Completion:
        import llama_cpp

        llm = self._llm
        started = time.perf_counter()
        prompt = self.prompt_tokens(messages)
        room = llm.n_ctx() - len(prompt)
        if room <= 0:
            raise TeacherError(
                f"the prompt is {len(prompt)} tokens; the context holds {llm.n_ctx()} "
                "(raise the context size or shorten the prompt)"
            )
        budget = min(sampling.max_tokens, room)
        llm.set_seed(sampling.seed if sampling.seed is not None else time.time_ns() & 0xFFFFFFFF)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="ignore")  # as llama-cpp-python
        pieces: list[str] = []
        n_tokens = 0
        finish = "length"
        # a structured reply repeats its quotes, commas and keys by design: no penalty on those
        penalty = 1.0 if grammar is not None else sampling.repeat_penalty
        tokens = llm.generate(
            prompt,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            grammar=grammar,
            **{**SAMPLER_DEFAULTS, "repeat_penalty": penalty},
        )
        try:
            for token in tokens:
                if llama_cpp.llama_vocab_is_eog(llm._model.vocab, token):
                    finish = "stop"
                    break
                n_tokens += 1
                piece = clean_text(decoder.decode(llm.detokenize([token])))
                if piece:
                    pieces.append(piece)
                    if on_token is not None:
                        on_token(piece)
                if n_tokens >= budget:
                    break
                if cancelled is not None and cancelled():
                    raise IncompleteReply("cancelled", "".join(pieces))
        except RuntimeError as exc:  # llama_decode failed (out of memory, context full)
            raise IncompleteReply(f"llama.cpp stopped: {exc}", "".join(pieces)) from exc
        finally:
            tokens.close()
        tail = clean_text(decoder.decode(b"", final=True))
        if tail:
            pieces.append(tail)
            if on_token is not None:
                on_token(tail)
        extra = {"engine": "llama.cpp", "n_ctx": llm.n_ctx(), "template": self.template_source}
        if grammar is not None:
            extra["grammar"] = "json_schema"
            extra["repeat_penalty"] = penalty
        return Completion(
            text="".join(pieces),
            finish_reason=finish,
            prompt_tokens=len(prompt),
            completion_tokens=n_tokens,
            seconds=time.perf_counter() - started,
            teacher=self.name,
            extra=extra,
        )


def json_grammar(schema: JsonSchema) -> Any:
    """The llama.cpp grammar that holds a reply to ``schema``; a :class:`TeacherError` says why
    a schema cannot be one."""
    try:
        text = json.dumps(schema, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise TeacherError(f"the JSON schema is not JSON: {exc}") from exc
    return _grammar(text)


@functools.lru_cache(maxsize=32)  # the studio asks with a few fixed schemas, many times each
def _grammar(schema_text: str) -> Any:
    from llama_cpp.llama_grammar import LlamaGrammar

    try:
        return LlamaGrammar.from_json_schema(schema_text, verbose=False)
    except (AssertionError, AttributeError, KeyError, TypeError, ValueError, RecursionError) as exc:
        raise TeacherError(f"the JSON schema cannot be made a grammar: {exc!r}") from exc


def load_error(path: Path, n_ctx: int, exc: BaseException) -> TeacherError:
    """Why llama.cpp could not load ``path``, in the curator's terms. The model's weights load
    whatever the context; a failure after them (llama-cpp-python's "Failed to create
    llama_context") or out of memory is the context's size, most often one past the model's
    trained context, and the fix is a smaller one."""
    if not (isinstance(exc, MemoryError) or "llama_context" in str(exc)):
        return TeacherError(
            f"llama.cpp could not load {path.name}: the file is damaged, or its "
            "architecture is not one this llama.cpp knows"
        )
    trained = trained_context(path)
    if trained is not None and n_ctx > trained:
        return TeacherError(
            f"llama.cpp could not load {path.name} with a context of {n_ctx:,} tokens: the "
            f"model was trained on {trained:,}, and a context this large needs more memory "
            f"than this machine gave it; try a context of {trained:,} tokens (--n-ctx {trained})"
        )
    return TeacherError(
        f"llama.cpp could not load {path.name} with a context of {n_ctx:,} tokens: it needs "
        "more memory than this machine gave it; try a smaller context (--n-ctx)"
    )


def context_note(path: Path, n_ctx: int) -> str | None:
    """A warning, before anything loads, when ``n_ctx`` is past the context ``path`` was
    trained on: the model's replies degrade past it, and the context's memory is spent for
    nothing (a large one may not load at all)."""
    trained = trained_context(path)
    if trained is None or n_ctx <= trained:
        return None
    return (
        f"a context of {n_ctx:,} tokens is more than {path.name} was trained on ({trained:,}): "
        f"replies past {trained:,} tokens degrade, and the rest of the context takes memory "
        f"for nothing; try a context of {trained:,} tokens (--n-ctx {trained})"
    )


# GGUF's metadata value types: struct formats of the fixed-size ones; 8 a string, 9 an array
_GGUF_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q",
    12: "<d",
}  # fmt: skip
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_MAX_KEYS = 1 << 16  # real models have about 40; more is a damaged file
_GGUF_MAX_STRING = 64 << 20


def trained_context(path: Path) -> int | None:
    """The context a GGUF model was trained on (its ``<architecture>.context_length``), read
    from the file's header without loading the model; None when the file does not say or is
    not a GGUF file."""
    try:
        if not path.is_file():  # not a FIFO or a device, whose read would never end
            return None
        stat = path.stat()
    except (OSError, ValueError):
        return None
    # the settings dialog asks again at every step of its context box: read each file once
    return _trained_context(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=16)
def _trained_context(path: str, _size: int, _mtime_ns: int) -> int | None:
    try:
        with open(path, "rb") as f:
            return _read_trained_context(f)
    except (OSError, ValueError, UnicodeDecodeError, struct.error):
        return None


def _read_trained_context(f: Any) -> int | None:
    magic, version = f.read(4), _unpack(f, "<I")
    if magic != GGUF_MAGIC or version < 2:  # version 1 is from 2023; llama.cpp refuses it
        return None
    _unpack(f, "<Q")  # the tensor count
    n_keys = _unpack(f, "<Q")
    if n_keys > _GGUF_MAX_KEYS:
        return None
    architecture, lengths = None, {}
    for _ in range(n_keys):
        key, kind = _gguf_string(f), _unpack(f, "<I")
        if kind == _GGUF_STRING and key == "general.architecture":
            architecture = _gguf_string(f)
        elif kind in _GGUF_SCALARS and key.endswith(".context_length"):
            lengths[key] = _unpack(f, _GGUF_SCALARS[kind])
        else:
            _skip_value(f, kind)
        found = lengths.get(f"{architecture}.context_length")
        if isinstance(found, int) and not isinstance(found, bool) and found > 0:
            return found
    return None


def _unpack(f: Any, fmt: str) -> Any:
    size = struct.calcsize(fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("the GGUF header ends early")
    return struct.unpack(fmt, data)[0]


def _gguf_string(f: Any) -> str:
    size = _unpack(f, "<Q")
    if size > _GGUF_MAX_STRING:
        raise ValueError("a GGUF string is too long")
    return f.read(size).decode("utf-8")


def _skip_value(f: Any, kind: int) -> None:
    if kind in _GGUF_SCALARS:
        f.seek(struct.calcsize(_GGUF_SCALARS[kind]), 1)
    elif kind == _GGUF_STRING:
        f.seek(_unpack(f, "<Q"), 1)
    elif kind == _GGUF_ARRAY:
        item, count = _unpack(f, "<I"), _unpack(f, "<Q")
        if item in _GGUF_SCALARS:
            f.seek(struct.calcsize(_GGUF_SCALARS[item]) * count, 1)
        else:
            for _ in range(count):  # strings (a vocabulary); nested arrays are not in use
                _skip_value(f, item)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


def check_gguf_file(path: Path) -> None:
    """Refuse, with a plain reason, what is not a readable GGUF file (before llama.cpp sees it)."""
    try:
        if not path.exists():
            raise TeacherError(f"no model file at {path}")
        if not path.is_file():
            raise TeacherError(f"{path} is not a file")
        with path.open("rb") as f:
            magic = f.read(4)
    except (OSError, ValueError) as exc:  # a name too long, a NUL in it, no permission
        reason = getattr(exc, "strerror", None) or str(exc)
        raise TeacherError(f"cannot read the model file {str(path)[:200]}: {reason}") from exc
    if magic != GGUF_MAGIC:
        raise TeacherError(f"{path.name} is not a GGUF model file")
