"""A teacher behind any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, LM Studio,
llama.cpp's server), streamed over plain HTTP with the standard library.

What can go wrong on a network is expected here: a 429 or 5xx, a dropped connection, a server
that goes quiet, a stream that is not JSON. Those are retried with exponential backoff (honouring
``Retry-After``); a refusal (401, 404, 400) is not. Whatever arrives is data: it is decoded,
cleaned of control characters and capped, never run. The API key goes into one header and
nowhere else: not the teacher's name, its repr, a log line or an error message.

A reply asked for with a JSON schema is sent with a ``response_format`` in the first form the
server takes (:data:`SCHEMA_FORMATS`): a server that refuses one form, naming it in its error,
is asked again at once in the next, and the teacher remembers the form that worked.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, NamedTuple

from studio import __version__
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

MAX_LINE = 1 << 20  # one SSE line; a token's chunk is ~200 bytes
MAX_BODY = 16 << 20  # a non-streamed reply or an error page
RETRY_STATUSES = {408, 409, 425, 429} | set(range(500, 600))
# How a JSON schema is asked of a server, best first: OpenAI's structured outputs (also vLLM,
# llama.cpp's llama-server, LM Studio, Ollama); the "json_object" form with a schema
# (llama-cpp-python's server); then none, the prompt alone asking for JSON.
SCHEMA_FORMATS = ("json_schema", "json_object", "none")


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    """How the studio talks to one server (the key is kept apart, see :func:`resolve_api_key`)."""

    base_url: str
    model: str
    concurrency: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    reply_timeout: float = 900.0
    retries: int = 4
    backoff: float = 1.0  # the first wait; it doubles per retry (with jitter) up to max_backoff
    max_backoff: float = 30.0
    max_reply_chars: int = 400_000  # ~100k tokens: a reply past this is cut, as "length"


class _FormatRefused(Exception):
    """The server refused the request's ``response_format`` (its error names it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Retry(Exception):
    """One attempt failed in a way that another attempt may not."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason, self.retry_after = reason, retry_after


class _Reply:
    """What one attempt has received so far."""

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.chars = 0
        self.chunks = 0
        self.finish: str | None = None
        self.usage: dict[str, int] = {}

    @property
    def text(self) -> str:
        return "".join(self.pieces)


class OpenAICompatTeacher:
    """A model on an OpenAI-compatible server; ``concurrency`` replies run at once."""

    def __init__(self, settings: RemoteSettings, *, api_key: str | None = None) -> None:
        url = urllib.parse.urlsplit(settings.base_url.rstrip("/"))
        if url.scheme not in ("http", "https") or not url.hostname:
            raise TeacherError(f"not an http(s) base URL: {settings.base_url!r}")
        self.settings = settings
        self.concurrency = settings.concurrency
        self.name = f"openai:{settings.model}@{url.netloc}"
        self._https = url.scheme == "https"
        self._host, self._port, self._prefix = url.hostname, url.port, url.path
        self._api_key = api_key or None
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._closed = False
        self._schema_format = 0  # index into SCHEMA_FORMATS: the first form not refused yet
        self._format_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"OpenAICompatTeacher({self.name!r})"

    def close(self) -> None:
        self._closed = True

    # replies ------------------------------------------------------------------------------

    def chat(
        self,
        messages: list[Message],
        sampling: Sampling,
        *,
        on_token: TokenFn | None = None,
        cancelled: CancelFn | None = None,
        on_restart: RestartFn | None = None,
        json_schema: JsonSchema | None = None,
    ) -> Completion:
        _check_schema(json_schema)
        started = time.perf_counter()
        self._acquire(cancelled)
        try:
            return self._chat_with_retries(
                _Request(messages, sampling, json_schema), started, on_token, cancelled, on_restart
            )
        finally:
            self._slots.release()

    @property
    def schema_format(self) -> str:
        """How this teacher asks the server for JSON: the first form it has not refused."""
        return SCHEMA_FORMATS[self._schema_format]

    def _refused_format(self, form: str, reason: str) -> None:
        """The server refused ``form``: the next requests use the next form."""
        with self._format_lock:
            if SCHEMA_FORMATS[self._schema_format] == form:  # not moved on by another reply
                self._schema_format += 1
                log.warning(
                    "%s refused response_format %s (%s); asking with %s from now on",
                    self.name, form, reason, self.schema_format,
                )  # fmt: skip

    def _chat_body(self, request: _Request, form: str) -> bytes:
        messages, sampling, schema = request
        payload: dict[str, Any] = {
            "model": self.settings.model,
            "messages": messages,
            "max_tokens": sampling.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if sampling.seed is not None:
            payload["seed"] = sampling.seed
        if schema is not None and form == "json_schema":
            payload["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "reply", "schema": schema, "strict": True},
            }
        elif schema is not None and form == "json_object":
            payload["response_format"] = {"type": "json_object", "schema": schema}
        # ASCII escapes carry any text, even a lone surrogate, as valid JSON
        return json.dumps(payload).encode("ascii")

    def _chat_with_retries(
        self,
        request: _Request,
        started: float,
        on_token: TokenFn | None,
        cancelled: CancelFn | None,
        on_restart: RestartFn | None,
    ) -> Completion:
        s = self.settings
        deadline = time.monotonic() + s.reply_timeout
        attempt = 0
        while True:
            reply = _Reply()
            form = self.schema_format if request.schema is not None else "none"
            body = self._chat_body(request, form)
            try:
                self._attempt(body, reply, deadline, on_token, cancelled, form != "none")
                return self._completion(reply, started, attempt, request, form)
            except _FormatRefused as exc:  # asked again at once, in the next form
                self._refused_format(form, self._redact(exc.reason))
                continue
            except _Retry as exc:
                if cancelled is not None and cancelled():
                    raise IncompleteReply("cancelled", reply.text) from None
                reason = self._redact(exc.reason)
                if attempt == s.retries:
                    raise self._give_up(reason, attempt + 1, reply) from None
                wait = self._backoff(attempt, exc.retry_after)
                log.warning("%s: %s; retrying in %.1f s", self.name, reason, wait)
                if reply.chunks and on_restart is not None:
                    on_restart(reason)
                self._sleep(wait, cancelled, deadline)
                attempt += 1

    def _give_up(self, reason: str, attempts: int, reply: _Reply) -> TeacherError:
        message = f"{reason} (gave up after {attempts} attempt{'' if attempts == 1 else 's'})"
        if reply.chunks:
            return IncompleteReply(message, reply.text)
        return TeacherError(message)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        s = self.settings
        if retry_after is not None:
            return min(max(retry_after, 0.0), s.max_backoff)
        # full jitter keeps many workers that failed together from retrying together
        return min(s.max_backoff, s.backoff * 2**attempt) * random.uniform(0.5, 1.0)

    def _attempt(
        self,
        body: bytes,
        reply: _Reply,
        deadline: float,
        on_token: TokenFn | None,
        cancelled: CancelFn | None,
        structured: bool = False,
    ) -> None:
        conn = self._connection()
        done = _watch(conn, cancelled)
        try:
            response = self._send(conn, "POST", "/chat/completions", body, structured)
            ctype = (response.getheader("Content-Type") or "").lower()
            if "text/event-stream" in ctype:
                self._read_stream(response, reply, deadline, on_token, cancelled)
            elif "json" in ctype:  # a server that ignores "stream"
                self._read_whole(response, reply, on_token)
            else:
                raise _Retry(f"the server answered with {ctype or 'no content type'}, not a stream")
        except TimeoutError:
            raise _Retry(f"no data from the server for {self.settings.read_timeout:g} s") from None
        except ssl.SSLCertVerificationError as exc:
            raise TeacherError(f"the server's certificate is not trusted: {exc.reason}") from None
        except socket.gaierror:
            raise TeacherError(f"cannot find the host {self._host}") from None
        except (http.client.HTTPException, ConnectionError, OSError) as exc:
            raise _Retry(f"the connection failed ({_describe(exc)})") from None
        finally:
            done.set()
            conn.close()

    def _read_stream(
        self,
        response: http.client.HTTPResponse,
        reply: _Reply,
        deadline: float,
        on_token: TokenFn | None,
        cancelled: CancelFn | None,
    ) -> None:
        while True:
            if cancelled is not None and cancelled():
                raise IncompleteReply("cancelled", reply.text)
            if time.monotonic() > deadline:
                raise IncompleteReply(
                    f"no complete reply within {self.settings.reply_timeout:g} s", reply.text
                )
            line = response.readline(MAX_LINE + 1)
            if not line:
                break
            if len(line) > MAX_LINE:
                raise _Retry("the server sent a line over 1 MB")
            line = line.strip()
            if not line.startswith(b"data:"):
                continue  # blank separators, ": keep-alive" comments, event:/id: fields
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            try:
                chunk = json.loads(data)
            except (ValueError, RecursionError):
                raise _Retry("the server sent a malformed stream (not JSON)") from None
            if self._take_chunk(chunk, reply, on_token):
                return  # capped
        if reply.finish is None:
            raise _Retry("the stream ended before the reply did")

    def _take_chunk(self, chunk: Any, reply: _Reply, on_token: TokenFn | None) -> bool:
        """Add one streamed chunk to ``reply``; True when the reply hit the size cap."""
        if not isinstance(chunk, dict):
            raise _Retry("the server sent a malformed stream (a chunk is not an object)")
        if "error" in chunk:
            raise _Retry(f"the server reported an error mid-reply: {_error_text(chunk)}")
        _take_usage(chunk.get("usage"), reply)
        choices = chunk.get("choices")
        if not choices:
            return False  # the usage-only chunk at the end
        choice = choices[0] if isinstance(choices, list) else None
        if not isinstance(choice, dict):
            raise _Retry("the server sent a malformed stream (bad choices)")
        delta = choice.get("delta") or choice.get("message") or {}
        content = delta.get("content") if isinstance(delta, dict) else None
        if content is not None and not isinstance(content, str):
            raise _Retry("the server sent a malformed stream (content is not text)")
        if isinstance(choice.get("finish_reason"), str):
            reply.finish = choice["finish_reason"]
        if content is None or (content == "" and "role" in delta):
            return False  # the opening chunk that only names the role
        reply.chunks += 1  # a chunk with "" is a token that ends mid-character
        return self._add_text(content, reply, on_token) if content else False

    def _add_text(self, content: str, reply: _Reply, on_token: TokenFn | None) -> bool:
        piece = clean_text(content)
        room = self.settings.max_reply_chars - reply.chars
        capped = len(piece) >= room
        if capped:
            piece = piece[:room]
            reply.finish = "length"
        if piece:
            reply.pieces.append(piece)
            reply.chars += len(piece)
            if on_token is not None:
                on_token(piece)
        return capped

    def _read_whole(
        self, response: http.client.HTTPResponse, reply: _Reply, on_token: TokenFn | None
    ) -> None:
        raw = response.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise IncompleteReply("the server's reply is over 16 MB")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise _Retry("the server sent malformed JSON") from None
        self._take_chunk(data, reply, on_token)
        if reply.finish is None:
            raise _Retry("the server's reply has no finish reason")

    def _completion(
        self, reply: _Reply, started: float, retries: int, request: _Request, form: str
    ) -> Completion:
        if reply.finish not in ("stop", "length"):
            raise IncompleteReply(f"the server stopped the reply ({reply.finish})", reply.text)
        estimated = "completion_tokens" not in reply.usage
        extra: dict[str, Any] = {"engine": "openai", "retries": retries}
        extra["usage_estimated"] = estimated
        if request.schema is not None:
            extra["response_format"] = form
        return Completion(
            text=reply.text,
            finish_reason=reply.finish,
            prompt_tokens=reply.usage.get("prompt_tokens", 0),
            # without usage figures, a streamed chunk is about one token on every server we know
            completion_tokens=reply.usage.get("completion_tokens", reply.chunks),
            seconds=time.perf_counter() - started,
            teacher=self.name,
            extra=extra,
        )

    # HTTP ---------------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        if self._closed:
            raise TeacherError("the teacher was closed")
        timeout = self.settings.connect_timeout
        if self._https:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=ssl.create_default_context()
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)

    def _send(
        self,
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        body: bytes | None = None,
        structured: bool = False,
    ) -> http.client.HTTPResponse:
        headers = {
            "Accept": "text/event-stream, application/json",
            "User-Agent": f"textbook-studio/{__version__}",
        }
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        conn.connect()
        conn.sock.settimeout(self.settings.read_timeout)
        conn.request(method, self._prefix + path, body=body, headers=headers)
        response = conn.getresponse()
        if response.status != 200:
            self._refuse(response, structured)
        return response

    def _refuse(self, response: http.client.HTTPResponse, structured: bool = False) -> None:
        status = response.status
        raw = response.read(64 << 10)
        detail = self._redact(_error_text(_json_or_text(raw)))
        what = f"HTTP {status}" + (f": {detail}" if detail else "")
        # a server that does not take our response_format says so with a 400 or a 422, and
        # llama-cpp-python's with a 500; either way its error names the field
        if structured and status >= 400 and _names_response_format(raw):
            raise _FormatRefused(what)
        if status in RETRY_STATUSES:
            raise _Retry(what, _retry_after(response.getheader("Retry-After")))
        if status in (401, 403):
            raise TeacherError(f"the server refused the API key ({what})")
        if status == 404:
            raise TeacherError(f"no such endpoint or model on the server ({what})")
        raise TeacherError(f"the server refused the request ({what})")

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    # checks -------------------------------------------------------------------------------

    def list_models(self, cancelled: CancelFn | None = None) -> list[str]:
        """The model names the server offers (``GET /models``), or a :class:`TeacherError`.
        ``cancelled`` cuts the wait short as in :meth:`chat` (:class:`IncompleteReply`), so a
        "Test connection" against a server that never answers can be stopped at once."""
        conn = self._connection()
        done = _watch(conn, cancelled)
        try:
            response = self._send(conn, "GET", "/models")
            data = _json_or_text(response.read(MAX_BODY))
        except (_Retry, http.client.HTTPException, OSError) as exc:
            if cancelled is not None and cancelled():  # the hang-up, not the server
                raise IncompleteReply("cancelled") from None
            raise self._list_failed(exc) from None
        finally:
            done.set()
            conn.close()
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise TeacherError("the server's model list is malformed")
        return [str(m["id"]) for m in items if isinstance(m, dict) and "id" in m][:1000]

    def _list_failed(self, exc: Exception) -> TeacherError:
        if isinstance(exc, _Retry):
            return TeacherError(self._redact(exc.reason))
        if isinstance(exc, TimeoutError):
            timeout = self.settings.read_timeout
            return TeacherError(f"the server at {self._host} did not answer within {timeout:g} s")
        if isinstance(exc, socket.gaierror):
            return TeacherError(f"cannot find the host {self._host}")
        return TeacherError(f"cannot reach {self._host} ({_describe(exc)})")

    def info(self, cancelled: CancelFn | None = None) -> dict[str, Any]:
        """The server and model, for ``teacher check`` and the settings dialog."""
        try:
            models = self.list_models(cancelled)
        except TeacherError as exc:
            if "404" not in str(exc):  # some servers have no model list; the chat still works
                raise
            models = []
        return {
            "kind": "openai",
            "name": self.name,
            "base_url": self.settings.base_url,
            "model": self.settings.model,
            "model_listed": self.settings.model in models if models else None,
            "server_models": models[:20],
            "api_key": "set" if self._api_key else "none",
            "concurrency": self.concurrency,
        }

    # waiting --------------------------------------------------------------------------------

    def _acquire(self, cancelled: CancelFn | None) -> None:
        while not self._slots.acquire(timeout=0.1):
            if cancelled is not None and cancelled():
                raise IncompleteReply("cancelled")

    def _sleep(self, seconds: float, cancelled: CancelFn | None, deadline: float) -> None:
        end = time.monotonic() + seconds
        if end > deadline:
            raise TeacherError(f"no complete reply within {self.settings.reply_timeout:g} s")
        while (left := end - time.monotonic()) > 0:
            if cancelled is not None and cancelled():
                raise IncompleteReply("cancelled")
            time.sleep(min(left, 0.1))


def _watch(conn: http.client.HTTPConnection, cancelled: CancelFn | None) -> threading.Event:
    """Start watching ``cancelled`` for one request on ``conn``; set the event it returns when
    the request is over."""
    done = threading.Event()
    if cancelled is not None:
        threading.Thread(
            target=_hang_up_on_cancel, args=(conn, cancelled, done), daemon=True
        ).start()
    return done


def _hang_up_on_cancel(
    conn: http.client.HTTPConnection, cancelled: CancelFn, done: threading.Event
) -> None:
    """Watch ``cancelled`` while a request runs and cut its socket when it says so: a read that
    waits on a silent server then ends at once, not after the read timeout. A cancel that comes
    while the socket is still connecting waits for it: the read after the connect is cut."""
    while not done.wait(0.1):
        sock = conn.sock
        if sock is not None and cancelled():
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            return


class _Request(NamedTuple):
    messages: list[Message]
    sampling: Sampling
    schema: JsonSchema | None


def _check_schema(schema: JsonSchema | None) -> None:
    if schema is None:
        return
    if not isinstance(schema, dict):
        raise TeacherError("a JSON schema is an object")
    try:
        json.dumps(schema)
    except (TypeError, ValueError) as exc:
        raise TeacherError(f"the JSON schema is not JSON: {exc}") from exc


def _names_response_format(raw: bytes) -> bool:
    text = raw.decode("utf-8", "replace").lower()
    return "response_format" in text or "json_schema" in text


def _take_usage(usage: Any, reply: _Reply) -> None:
    if not isinstance(usage, dict):
        return
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            reply.usage[key] = value


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return raw.decode("utf-8", "replace")


def _error_text(data: Any) -> str:
    """The server's own words about an error, short and printable."""
    if isinstance(data, dict):
        error = data.get("error", data)
        message = error.get("message", "") if isinstance(error, dict) else error
        data = message if isinstance(message, str) else json.dumps(message)[:200]
    text = clean_text(str(data)).replace("\n", " ").strip()
    return text[:200] + ("…" if len(text) > 200 else "")


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None  # an HTTP date: rare enough to fall back to our own backoff


def _describe(exc: BaseException) -> str:
    return type(exc).__name__ + (f": {exc.strerror}" if getattr(exc, "strerror", None) else "")
