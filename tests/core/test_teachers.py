"""Teachers against a real llama.cpp: the tiny GGUF in-process, and the same file behind a real
``llama_cpp.server`` on 127.0.0.1, with a fault-injecting HTTP proxy in front of it for what the
real server will not do on demand (429, garbage, silence, a dropped stream, hostile replies)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from studio.teachers.base import (
    Completion,
    IncompleteReply,
    Sampling,
    Teacher,
    TeacherError,
    clean_text,
)
from studio.teachers.check import check_teacher
from studio.teachers.config import (
    TeacherConfig,
    close_teachers,
    default_local_model,
    load_config,
    open_teacher,
    parse_spec,
    resolve_api_key,
    save_config,
)
from studio.teachers.llama import LlamaCppTeacher, context_note, load_error, trained_context
from studio.teachers.openai import OpenAICompatTeacher, RemoteSettings
from tests.fixtures.teacher_proxy import TeacherProxy
from tests.fixtures.tiny_gguf import CONTEXT as TINY_CONTEXT
from tests.fixtures.tiny_gguf import LlamaServer, free_port, write_tiny_gguf

HELLO = [{"role": "user", "content": "Write one line about rivers."}]
SECRET = "sk-test-0123456789abcdef"
SCHEMA = {
    "type": "object",
    "properties": {
        "grade": {"type": "integer", "enum": [1, 2, 3, 4, 5]},
        "words": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["grade", "words"],
    "additionalProperties": False,
}


def fits_schema(text: str) -> bool:
    """The reply is one JSON value of SCHEMA (raw line breaks in strings allowed, as the studio
    reads them)."""
    try:
        data = json.loads(text, strict=False)
    except ValueError:
        return False
    return (
        isinstance(data, dict)
        and set(data) == {"grade", "words"}
        and data["grade"] in (1, 2, 3, 4, 5)
        and isinstance(data["words"], list)
        and all(isinstance(w, str) for w in data["words"])
    )


@pytest.fixture(autouse=True)
def _fresh_teachers():
    yield
    close_teachers()


@pytest.fixture(scope="module")
def local(tiny_gguf: Path) -> LlamaCppTeacher:
    teacher = LlamaCppTeacher(tiny_gguf)
    yield teacher
    teacher.close()


# -- the local teacher -----------------------------------------------------------------------


def test_local_teacher_streams_a_reply_through_the_gguf_template(local: LlamaCppTeacher):
    pieces: list[str] = []
    reply = local.chat(HELLO, Sampling(max_tokens=40, seed=1), on_token=pieces.append)
    assert isinstance(local, Teacher)
    assert isinstance(reply, Completion)
    assert reply.text == "".join(pieces)
    assert reply.finish_reason in ("stop", "length")
    assert 0 < reply.completion_tokens <= 40
    assert reply.teacher == "local:tiny.gguf"
    assert local.template_source == "gguf"
    # the prompt is the embedded ChatML template, rendered and tokenized with its special tokens
    prompt = local.prompt_tokens(HELLO)
    assert reply.prompt_tokens == len(prompt)
    rendered = local._llm.detokenize(prompt, special=True).decode()
    assert (
        rendered
        == "<|im_start|>user\nWrite one line about rivers.<|im_end|>\n<|im_start|>assistant\n"
    )


def test_local_replies_end_both_ways_and_repeat_with_a_seed(local: LlamaCppTeacher):
    replies = [local.chat(HELLO, Sampling(max_tokens=60, seed=s)) for s in range(12)]
    assert {r.finish_reason for r in replies} == {"stop", "length"}
    for r in replies:
        if r.finish_reason == "length":
            assert r.completion_tokens == 60
    again = local.chat(HELLO, Sampling(max_tokens=60, seed=3))
    assert again.text == replies[3].text
    # greedy decoding never picks the tiny model's end token: a reply that runs to the limit
    greedy = local.chat(HELLO, Sampling(max_tokens=25, temperature=0.0))
    assert (greedy.finish_reason, greedy.completion_tokens) == ("length", 25)


def test_local_reply_text_is_clean(tmp_path: Path):
    # a model free to emit any byte: broken UTF-8 and control characters come out clean
    teacher = LlamaCppTeacher(write_tiny_gguf(tmp_path / "bytes.gguf", ascii_only=False))
    text = "".join(teacher.chat(HELLO, Sampling(max_tokens=80, seed=s)).text for s in range(6))
    teacher.close()
    assert len(text) > 50
    assert text == clean_text(text)
    text.encode("utf-8")  # no lone surrogates: storable as SQLite text


def test_local_cancel_keeps_the_partial_reply_apart(local: LlamaCppTeacher):
    pieces: list[str] = []
    with pytest.raises(IncompleteReply) as caught:
        local.chat(
            HELLO,
            Sampling(max_tokens=200, temperature=0.0),
            on_token=pieces.append,
            cancelled=lambda: len(pieces) >= 5,
        )
    assert str(caught.value) == "cancelled"
    assert caught.value.partial == "".join(pieces)
    # the model is still usable after a cancelled reply
    assert local.chat(HELLO, Sampling(max_tokens=5, temperature=0.0)).completion_tokens == 5


def test_local_prompt_longer_than_the_context_is_refused(tiny_gguf: Path):
    from studio.teachers.llama import LlamaSettings

    teacher = LlamaCppTeacher(tiny_gguf, LlamaSettings(n_ctx=256))  # llama.cpp's smallest
    long = [{"role": "user", "content": "word " * 300}]
    with pytest.raises(TeacherError, match="context holds 256"):
        teacher.chat(long, Sampling(max_tokens=8))
    # a reply that would overflow is cut at the context's end, as "length"
    reply = teacher.chat(HELLO, Sampling(max_tokens=500, temperature=0.0))
    assert reply.finish_reason == "length"
    assert reply.prompt_tokens + reply.completion_tokens == 256
    teacher.close()


def test_local_replies_from_many_threads_share_one_model(tiny_gguf: Path):
    config = parse_spec(f"local:{tiny_gguf}")
    teacher = open_teacher(config)
    assert open_teacher(parse_spec(f"local:{tiny_gguf}")) is teacher  # loaded once
    assert teacher.concurrency == 1
    results: list[Completion] = []
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            results.append(teacher.chat(HELLO, Sampling(max_tokens=30, seed=seed)))
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 4
    single = LlamaCppTeacher(tiny_gguf)
    assert sorted(r.text for r in results) == sorted(
        single.chat(HELLO, Sampling(max_tokens=30, seed=s)).text for s in range(4)
    )
    single.close()


def test_a_local_reply_asked_with_a_schema_is_held_to_it(local: LlamaCppTeacher):
    plain = [local.chat(HELLO, Sampling(max_tokens=200, seed=s)) for s in range(6)]
    assert not any(fits_schema(r.text) for r in plain)  # the tiny model's own words are noise
    held = [
        local.chat(HELLO, Sampling(max_tokens=600, seed=s), json_schema=SCHEMA) for s in range(6)
    ]
    assert all(r.extra["grammar"] == "json_schema" for r in held)
    assert all(r.finish_reason == "stop" and fits_schema(r.text) for r in held), held
    # the same schema again and again reuses one grammar
    again = local.chat(HELLO, Sampling(max_tokens=600, seed=3), json_schema=dict(SCHEMA))
    assert again.text == held[3].text
    # cut off by max_tokens: the start of the JSON, which the caller cannot read as a whole
    cut = local.chat(HELLO, Sampling(max_tokens=6, seed=1), json_schema=SCHEMA)
    assert cut.finish_reason == "length" and cut.text.startswith("{") and not fits_schema(cut.text)


@pytest.mark.parametrize(
    "schema, reason",
    [
        ({"type": "object", "properties": {"x": {"type": "quaternion"}}}, "cannot be made"),
        ({"type": "object", "properties": {"x": {"enum": {1, 2}}}}, "not JSON"),
    ],
)
def test_a_schema_that_cannot_be_a_grammar_is_refused(local: LlamaCppTeacher, schema, reason):
    with pytest.raises(TeacherError, match=reason):
        local.chat(HELLO, Sampling(max_tokens=4), json_schema=schema)
    assert local.chat(HELLO, Sampling(max_tokens=4, temperature=0.0)).completion_tokens == 4


def test_close_during_a_reply_frees_the_model_when_it_ends(tiny_gguf: Path):
    teacher = LlamaCppTeacher(tiny_gguf)
    closed_mid_reply: list[bool] = []

    def close_on_third(piece: str, pieces: list[str] = []) -> None:  # noqa: B006
        pieces.append(piece)
        if len(pieces) == 3:
            teacher.close()  # from inside the reply: must not wait for it (it would deadlock)
            closed_mid_reply.append(teacher.loaded)

    reply = teacher.chat(HELLO, Sampling(max_tokens=10, temperature=0.0), on_token=close_on_third)
    assert closed_mid_reply == [True]  # the reply went on with its model...
    assert reply.completion_tokens == 10
    assert not teacher.loaded  # ...which was freed as the reply ended
    # greedy, as above: a sampled first token may be the end of the reply (the tiny model is random)
    again = teacher.chat(HELLO, Sampling(max_tokens=4, temperature=0.0))
    assert again.completion_tokens > 0  # and loads again
    teacher.close()
    assert not teacher.loaded


def test_a_gguf_without_a_template_falls_back_to_chatml(tmp_path: Path):
    teacher = LlamaCppTeacher(write_tiny_gguf(tmp_path / "base.gguf", template=None))
    teacher.chat(HELLO, Sampling(max_tokens=4))
    assert teacher.info()["template"].startswith("chatml")
    teacher.close()


def test_a_hostile_chat_template_cannot_escape_its_sandbox(tmp_path: Path):
    marker = tmp_path / "pwned"
    template = (
        "{{ ''.__class__.__mro__[1].__subclasses__() }}"
        f"{{{{ cycler.__init__.__globals__.os.system('touch {marker}') }}}}"
    )
    teacher = LlamaCppTeacher(write_tiny_gguf(tmp_path / "evil.gguf", template=template))
    with pytest.raises(TeacherError, match="chat template"):
        teacher.chat(HELLO, Sampling(max_tokens=4))
    assert not marker.exists()
    teacher.close()


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda d: d / "missing.gguf", "no model file"),
        (lambda d: d, "not a file"),
        (lambda d: _write(d / "notes.gguf", b"just some text, not a model"), "not a GGUF"),
        (lambda d: _write(d / "empty.gguf", b""), "not a GGUF"),
        (lambda d: _write(d / "cut.gguf", _tiny_bytes(d)[:200_000]), "damaged"),
        (lambda d: _write(d / "noise.gguf", b"GGUF" + os.urandom(50_000)), "damaged"),
    ],
)
def test_broken_model_files_are_refused_with_a_reason(tmp_path: Path, make, reason):
    teacher = LlamaCppTeacher(make(tmp_path))
    with pytest.raises(TeacherError, match=reason):
        teacher.load()
    assert not teacher.loaded


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _tiny_bytes(folder: Path) -> bytes:
    return write_tiny_gguf(folder / "whole.gguf").read_bytes()


# -- settings --------------------------------------------------------------------------------


def test_settings_round_trip_in_the_project_folder_without_secrets(project, monkeypatch):
    assert load_config(project.root) == TeacherConfig()  # offline default when nothing saved
    monkeypatch.setenv("STUDIO_TEST_KEY", SECRET)
    config = parse_spec(
        "openai:https://api.example.org/v1", model="m1", api_key_env="STUDIO_TEST_KEY"
    )
    path = save_config(project.root, config)
    assert load_config(project.root) == config
    assert SECRET not in path.read_text()
    assert resolve_api_key(config) == SECRET
    teacher = open_teacher(config)
    assert SECRET not in teacher.name + repr(teacher)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("{not json", "cannot read"),
        ('["a list"]', "not a JSON object"),
        ('{"kind": "telepathy"}', "unknown teacher kind"),
        ('{"n_ctx": "big"}', "should be int"),
        ('{"concurrency": 0}', "at least 1"),
        ('{"kind": "openai", "base_url": "file:///etc/passwd", "model": "m"}', "http"),
        ('{"model": "\xff\xfe"}', "cannot read"),  # not UTF-8
        ('{"kind": "local", "retries": -1}', "at least 0"),
    ],
)
def test_broken_settings_files_give_a_clear_error(project, text, reason):
    (project.root / "teacher.json").write_bytes(text.encode("latin-1"))
    with pytest.raises(TeacherError, match=reason):
        load_config(project.root)


def test_specs(tiny_gguf: Path):
    assert parse_spec("local").path == ""
    assert parse_spec("local:default").model_path() == default_local_model()
    assert parse_spec(f"local:{tiny_gguf}", n_ctx=512).n_ctx == 512
    remote = parse_spec("openai:http://127.0.0.1:8080/v1", model="qwen")
    assert (remote.kind, remote.base_url, remote.model) == (
        "openai",
        "http://127.0.0.1:8080/v1",
        "qwen",
    )
    for bad in ("gpt4", "openai:http://x/v1", "openai:ftp://x", "ollama:http://x"):
        with pytest.raises(TeacherError):
            parse_spec(bad)  # unknown kinds, a remote teacher without a model, a bad URL
    with pytest.raises(TeacherError, match="no model file"):
        open_teacher(parse_spec("local:no/such/model.gguf")).load()


def test_api_key_env_must_exist(monkeypatch):
    monkeypatch.delenv("STUDIO_NO_SUCH_KEY", raising=False)
    config = parse_spec("openai:http://127.0.0.1:1/v1", model="m", api_key_env="STUDIO_NO_SUCH_KEY")
    with pytest.raises(TeacherError, match="STUDIO_NO_SUCH_KEY is not set"):
        open_teacher(config)


# -- the remote teacher against a real llama_cpp.server ---------------------------------------


def remote(url: str, *, key: str | None = None, **changes) -> OpenAICompatTeacher:
    """A remote teacher with test-sized waits (no backoff, a 10 s silence limit)."""
    settings = {"model": "tiny", "retries": 3, "backoff": 0.0, "read_timeout": 10.0, **changes}
    return OpenAICompatTeacher(RemoteSettings(base_url=url, **settings), api_key=key)


def test_remote_teacher_streams_from_a_real_server(llama_server: LlamaServer):
    teacher = remote(llama_server.url)
    pieces: list[str] = []
    reply = teacher.chat(HELLO, Sampling(max_tokens=30, seed=2), on_token=pieces.append)
    assert isinstance(teacher, Teacher)
    assert reply.text == "".join(pieces)
    assert reply.finish_reason in ("stop", "length")
    assert reply.teacher.startswith("openai:tiny@127.0.0.1:")
    greedy = teacher.chat(HELLO, Sampling(max_tokens=12, temperature=0.0))
    assert greedy.finish_reason == "length"
    assert teacher.info()["model_listed"] is True


def test_local_reply_is_llama_cpp_pythons_own(local: LlamaCppTeacher, tiny_gguf: Path):
    """The studio renders the template and samples itself (for exact counts and cancel): its
    reply is the one llama-cpp-python's create_chat_completion gives for the same request."""
    from llama_cpp import Llama

    direct = Llama(str(tiny_gguf), n_ctx=4096, n_threads=1, n_threads_batch=1, verbose=False)
    for sampling in (Sampling(max_tokens=30, temperature=0.0), Sampling(max_tokens=60, seed=7)):
        theirs = direct.create_chat_completion(HELLO, **sampling.as_dict())
        ours = local.chat(HELLO, sampling)
        assert ours.text == clean_text(theirs["choices"][0]["message"]["content"])
        assert ours.finish_reason == theirs["choices"][0]["finish_reason"]
        assert ours.prompt_tokens == theirs["usage"]["prompt_tokens"]
    direct.close()


def test_remote_unreachable_server_is_a_clear_error():
    teacher = remote(f"http://127.0.0.1:{free_port()}/v1", retries=1)
    with pytest.raises(TeacherError, match="connection failed.*gave up after 2 attempts"):
        teacher.chat(HELLO, Sampling(max_tokens=4))


@pytest.mark.slow
def test_server_killed_mid_stream_then_back_is_retried(tiny_gguf: Path):
    first = LlamaServer(tiny_gguf)
    second: list[LlamaServer] = []
    restart = threading.Thread(
        target=lambda: second.append(LlamaServer(tiny_gguf, port=first.port))
    )
    killed = threading.Event()
    pieces: list[str] = []
    restarts: list[str] = []

    def kill_after_five(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 5 and not killed.is_set():
            killed.set()
            first.kill()  # the stream drops mid-reply; the server comes back on the same port
            restart.start()

    def start_over(reason: str) -> None:
        restarts.append(reason)
        pieces.clear()

    # retries enough to outlast the restart (about a second, longer on a busy machine)
    teacher = remote(first.url, retries=240, backoff=0.25, max_backoff=0.25)
    try:
        reply = teacher.chat(
            HELLO,
            Sampling(max_tokens=400, temperature=0.0),
            on_token=kill_after_five,
            on_restart=start_over,
        )
    finally:
        restart.join()
        for server in second:
            server.kill()
    assert killed.is_set()
    assert restarts  # the preview was told to start over
    assert reply.finish_reason == "length"
    assert reply.text == "".join(pieces)
    assert reply.extra["retries"] >= 1


def test_server_killed_for_good_gives_an_incomplete_reply(tiny_gguf: Path):
    server = LlamaServer(tiny_gguf)
    pieces: list[str] = []

    def kill_after_five(piece: str) -> None:
        pieces.append(piece)
        if len(pieces) == 5:
            server.kill()

    teacher = remote(server.url, retries=2)
    with pytest.raises(TeacherError) as caught:
        teacher.chat(HELLO, Sampling(max_tokens=400, temperature=0.0), on_token=kill_after_five)
    assert "gave up after 3 attempts" in str(caught.value)


# -- faults the real server will not make: a proxy in front of it ------------------------------


@pytest.fixture
def proxy(llama_server: LlamaServer):
    p = TeacherProxy(llama_server.url)
    yield p
    p.close()


@pytest.mark.parametrize(
    "faults",
    [
        ["429", "429"],
        ["503"],
        ["drop"],
        ["garbage"],
        ["not_objects"],
        ["bad_content"],
        ["html"],
        ["binary"],
        ["no_finish"],
        ["huge_line"],
        ["429", "drop", "garbage", "503"],
    ],
)
def test_faults_are_retried_until_a_clean_reply(proxy: TeacherProxy, faults: list[str]):
    proxy.faults.extend(faults)
    restarts: list[str] = []
    pieces: list[str] = []
    teacher = remote(proxy.url, retries=len(faults))
    reply = teacher.chat(
        HELLO,
        Sampling(max_tokens=20, temperature=0.0),
        on_token=pieces.append,
        on_restart=lambda reason: (restarts.append(reason), pieces.clear()),
    )
    assert reply.extra["retries"] == len(faults)
    assert reply.text == "".join(pieces)
    assert reply.finish_reason == "length"
    assert (
        reply.text == remote(proxy.url).chat(HELLO, Sampling(max_tokens=20, temperature=0.0)).text
    )


@pytest.mark.parametrize(
    "fault, error, reason",
    [
        ("429", TeacherError, "HTTP 429: rate limited"),
        ("drop", IncompleteReply, "stream ended before the reply did"),
        ("garbage", TeacherError, "malformed stream"),
        ("no_finish", IncompleteReply, "stream ended"),
        ("binary", TeacherError, "malformed stream"),
    ],
)
def test_faults_past_the_retries_are_clean_errors(proxy, fault, error, reason):
    proxy.faults.extend([fault] * 3)
    with pytest.raises(error, match=reason) as caught:
        remote(proxy.url, retries=2).chat(HELLO, Sampling(max_tokens=20, temperature=0.0))
    assert "gave up after 3 attempts" in str(caught.value)
    if isinstance(caught.value, IncompleteReply):
        assert caught.value.partial  # shown to the curator, never stored as a page


def test_refusals_are_not_retried_and_never_show_the_key(proxy: TeacherProxy):
    proxy.faults.extend(["401"])
    teacher = remote(proxy.url, key=SECRET)
    with pytest.raises(TeacherError, match="refused the API key") as caught:
        teacher.chat(HELLO, Sampling(max_tokens=4))
    assert SECRET not in str(caught.value)
    assert len(proxy.headers) == 1
    assert proxy.headers[0]["Authorization"] == f"Bearer {SECRET}"
    proxy.faults.extend(["500_echo"] * 2)
    with pytest.raises(TeacherError, match="HTTP 500") as caught:
        remote(proxy.url, key=SECRET, retries=1).chat(HELLO, Sampling(max_tokens=4))
    assert SECRET not in str(caught.value)
    assert "***" in str(caught.value)


def test_a_slow_server_times_out_and_is_retried(proxy: TeacherProxy):
    proxy.faults.extend(["hold"])
    teacher = remote(proxy.url, read_timeout=0.3, retries=1)
    reply = teacher.chat(HELLO, Sampling(max_tokens=8, temperature=0.0))
    assert reply.extra["retries"] == 1
    proxy.release.set()


def test_a_slow_server_past_the_retries_says_so(proxy: TeacherProxy):
    proxy.faults.extend(["hold", "hold"])
    with pytest.raises(TeacherError, match=r"no data from the server for 0.3 s"):
        remote(proxy.url, read_timeout=0.3, retries=1).chat(HELLO, Sampling(max_tokens=8))
    proxy.release.set()


def test_a_reply_that_never_ends_is_capped_not_stored_whole(proxy: TeacherProxy):
    proxy.faults.append("huge")
    reply = remote(proxy.url, max_reply_chars=50_000).chat(HELLO, Sampling(max_tokens=8))
    assert reply.finish_reason == "length"
    assert len(reply.text) == 50_000


def test_a_filtered_reply_is_incomplete(proxy: TeacherProxy):
    proxy.faults.append("filtered")
    with pytest.raises(IncompleteReply, match="content_filter") as caught:
        remote(proxy.url).chat(HELLO, Sampling(max_tokens=8))
    assert caught.value.partial == "some words"


def test_hostile_reply_is_only_text(proxy: TeacherProxy, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    proxy.faults.append("hostile")
    reply = remote(proxy.url).chat(HELLO, Sampling(max_tokens=8))
    assert "__import__('os').system('touch PWNED')" in reply.text
    assert "<script>" in reply.text and "{{ 7*7 }}" in reply.text
    assert reply.text == clean_text(reply.text)
    reply.text.encode("utf-8")
    assert not (tmp_path / "PWNED").exists()
    assert (reply.prompt_tokens, reply.completion_tokens) == (11, 42)
    assert reply.extra["usage_estimated"] is False


def test_a_server_that_ignores_stream_still_answers(proxy: TeacherProxy):
    proxy.faults.append("plain_json")
    reply = remote(proxy.url).chat(HELLO, Sampling(max_tokens=8))
    assert (reply.text, reply.finish_reason, reply.completion_tokens) == (
        "a whole reply",
        "stop",
        3,
    )


def test_a_schema_finds_the_form_of_response_format_the_server_takes(llama_server: LlamaServer):
    # llama-cpp-python's server refuses OpenAI's "json_schema" form (an HTTP 500 naming
    # response_format) and takes "json_object" with a schema: the teacher steps down, at once
    # and not as a retry, and remembers it
    teacher = remote(llama_server.url, retries=0)
    assert teacher.schema_format == "json_schema"
    replies = [
        teacher.chat(HELLO, Sampling(max_tokens=600, seed=s), json_schema=SCHEMA) for s in range(3)
    ]
    assert teacher.schema_format == "json_object"
    for reply in replies:
        assert reply.extra["response_format"] == "json_object" and reply.extra["retries"] == 0
        assert reply.finish_reason == "stop" and fits_schema(reply.text), reply.text
    assert "response_format" not in teacher.chat(HELLO, Sampling(max_tokens=4)).extra


def test_a_server_that_takes_openais_form_keeps_it(proxy: TeacherProxy):
    proxy.faults.append("plain_json")  # a server that answers the structured request
    teacher = remote(proxy.url)
    reply = teacher.chat(HELLO, Sampling(max_tokens=8), json_schema=SCHEMA)
    assert proxy.bodies[0]["response_format"] == {  # type: ignore[index]
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": SCHEMA, "strict": True},
    }
    assert teacher.schema_format == "json_schema"
    assert reply.extra["response_format"] == "json_schema"
    assert reply.text == "a whole reply"  # sent as it came: the caller validates it


def test_a_server_that_takes_no_response_format_is_asked_without_one(proxy: TeacherProxy):
    proxy.faults.extend(["refuse_format", "refuse_format"])
    teacher = remote(proxy.url, retries=0)
    reply = teacher.chat(HELLO, Sampling(max_tokens=20, temperature=0.0), json_schema=SCHEMA)
    forms = [(b or {}).get("response_format", {}).get("type") for b in proxy.bodies]
    assert forms == ["json_schema", "json_object", None]
    assert teacher.schema_format == "none" and reply.extra["response_format"] == "none"
    assert reply.finish_reason == "length" and reply.text  # the real server's reply
    teacher.chat(HELLO, Sampling(max_tokens=4), json_schema=SCHEMA)  # remembered: asked once
    assert len(proxy.bodies) == 4 and "response_format" not in proxy.bodies[-1]  # type: ignore[operator]


def test_a_bad_request_not_about_the_format_is_refused_as_before(proxy: TeacherProxy):
    proxy.faults.append("bad_request")
    teacher = remote(proxy.url)
    with pytest.raises(TeacherError, match="refused the request.*max_tokens is too large"):
        teacher.chat(HELLO, Sampling(max_tokens=4), json_schema=SCHEMA)
    assert len(proxy.bodies) == 1 and teacher.schema_format == "json_schema"
    with pytest.raises(TeacherError, match="a JSON schema is an object"):
        teacher.chat(HELLO, Sampling(max_tokens=4), json_schema=["not", "a", "schema"])  # type: ignore[arg-type]
    assert len(proxy.bodies) == 1  # refused before anything was sent


def test_concurrency_is_a_ceiling_on_requests(proxy: TeacherProxy):
    teacher = remote(proxy.url, concurrency=2)
    proxy.faults.extend(["hold"] * 5)
    results: list[Completion] = []
    threads = [
        threading.Thread(target=lambda: results.append(teacher.chat(HELLO, Sampling(max_tokens=4))))
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    # wait until the server holds as many requests as the teacher allows, and a while more for
    # any request past the ceiling to show up; then let them all go
    for _ in range(6000):
        if proxy.holding >= 2:
            break
        threading.Event().wait(0.01)
    threading.Event().wait(0.3)
    assert proxy.holding == 2
    proxy.release.set()
    for t in threads:
        t.join()
    assert len(results) == 5
    assert proxy.max_holding == 2


def test_cancel_while_waiting_for_a_retry(proxy: TeacherProxy):
    proxy.faults.extend(["503"] * 10)
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(IncompleteReply, match="cancelled"):
        remote(proxy.url, retries=10, backoff=5.0).chat(
            HELLO, Sampling(max_tokens=4), cancelled=cancelled
        )


def test_without_a_key_variable_the_key_comes_from_the_keyring_or_nowhere(monkeypatch):
    import keyring
    from keyring.backends.fail import Keyring as NoKeyring

    if not isinstance(keyring.get_keyring(), NoKeyring):
        pytest.skip("this machine has a real keyring: the answer depends on what it holds")
    config = parse_spec("openai:http://127.0.0.1:8080/v1", model="m")
    assert resolve_api_key(config) is None  # a local server needs no key
    assert open_teacher(config)._api_key is None


def test_cancel_while_the_server_is_silent(proxy: TeacherProxy):
    proxy.faults.append("hold")
    calls = []

    def cancelled() -> bool:
        calls.append(1)
        return proxy.holding > 0 and len(calls) > 3

    # the read would wait 60 s for the silent server; cancel cuts it short
    teacher = remote(proxy.url, read_timeout=60.0)
    with pytest.raises(IncompleteReply, match="^cancelled$"):
        teacher.chat(HELLO, Sampling(max_tokens=4), cancelled=cancelled)
    proxy.release.set()


# -- a server that takes the connection and never answers --------------------------------------


@pytest.fixture
def silent_server():
    """The base URL of a socket on 127.0.0.1 that listens and never answers: the kernel takes
    the connection, nothing reads the request."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    listener.close()


def test_a_check_against_a_silent_server_stops_at_cancel(silent_server: str):
    config = parse_spec(f"openai:{silent_server}", model="m", read_timeout=60.0, retries=0)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(IncompleteReply, match="^cancelled$"):
        check_teacher(config, cancelled=stop.is_set)  # the model list waits on the silence
    assert time.monotonic() - started < 15  # not the 60 s read timeout


def test_a_cancel_before_the_connection_still_cuts_the_wait(silent_server: str):
    teacher = remote(silent_server, read_timeout=60.0)
    started = time.monotonic()
    with pytest.raises(IncompleteReply, match="^cancelled$"):
        teacher.list_models(cancelled=lambda: True)
    assert time.monotonic() - started < 15


def test_a_silent_server_past_the_read_timeout_says_so(silent_server: str):
    with pytest.raises(
        TeacherError, match=r"the server at 127\.0\.0\.1 did not answer within 0.3 s"
    ):
        remote(silent_server, read_timeout=0.3).info()


# -- settings out of range, malformed URLs and paths -------------------------------------------


@pytest.mark.parametrize(
    "text, reason",
    [
        ('{"n_ctx": 100000000000000}', "n_ctx must be at most 1,048,576 tokens, not 100,0"),
        ('{"n_threads": 100000}', "n_threads must be at most 1,024 threads, not 100,000"),
        ('{"n_gpu_layers": 100000}', "n_gpu_layers must be at most 9,999 layers"),
        ('{"concurrency": 99999}', "concurrency must be at most 256 requests, not 99,999"),
        ('{"retries": 1000}', "retries must be at most 20, not 1,000"),
        ('{"read_timeout": NaN}', "read_timeout must be a number of seconds, not nan"),
        ('{"reply_timeout": Infinity}', "reply_timeout must be a number of seconds, not inf"),
        ('{"read_timeout": 1e300}', "read_timeout must be at most 3,600 s, not 1e.300"),
        ('{"backoff": -1}', "backoff must be at least 0 s, not -1"),
    ],
)
def test_settings_out_of_range_are_refused_with_the_bound(project, text, reason):
    (project.root / "teacher.json").write_text(text)
    with pytest.raises(TeacherError, match=reason):
        load_config(project.root)
    # the settings dialog reads them unchecked, to show what is wrong in its fields
    assert load_config(project.root, check=False) != TeacherConfig()


def test_a_thread_count_past_this_machines_cores_is_kept(project):
    save_config(project.root, TeacherConfig(n_threads=(os.cpu_count() or 1) * 8))
    assert load_config(project.root).n_threads == (os.cpu_count() or 1) * 8


@pytest.mark.parametrize(
    "url, reason",
    [
        ("", "needs a base URL"),
        ("http://127.0.0.1:99999/v1", "has port '99999': a port is a number from 1 to 65535"),
        ("http://127.0.0.1:0/v1", "has port '0'"),
        ("http://127.0.0.1:http/v1", "has port 'http'"),
        ("http://[::1/v1", r"has an unmatched \[ or \] in its host"),
        ("http://[zz]/v1", r"has no IPv6 address inside the \[ \]"),
        ("http://", "has no host"),
        ("http:///v1", "has no host"),
        ("http://127.0.0.1:9/ v1", "has a space or a control character in it"),
        ("http://127.0.0.1:9/\nv1", "has a space or a control character in it"),
        ("http://" + "a" * 100_000, "is 100,007 characters long; a base URL is at most 2,048"),
        ("http://" + "a" * 64 + ".example/v1", "has a host name that is not valid"),
        ("http://user:pw@127.0.0.1:9/v1", "has a user name or password in it"),
        ("http://127.0.0.1:9/v1?key=1", "has a . or # part"),
        ("ftp://x", "must start with http:// or https://"),
    ],
)
def test_malformed_base_urls_are_refused_in_plain_words(url: str, reason: str):
    with pytest.raises(TeacherError, match=reason):
        parse_spec(f"openai:{url}", model="m")


def test_well_formed_base_urls_are_taken():
    for url in ("http://[::1]:8080/v1", "HTTPS://api.example.org/v1", "http://bücher.example"):
        assert parse_spec(f"openai:{url}", model="m").base_url == url


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"path": "a\x00b.gguf"}, "the model file path has a NUL character in it"),
        ({"path": "x" * 100_000}, "the model file path is 100,000 characters long"),
        ({"kind": "openai", "model": "m" * 100_000}, "the model name is 100,000 characters"),
        ({"kind": "openai", "model": "m\x00"}, "the model name has a control or invisible"),
        ({"kind": "openai", "model": "m\u202eo"}, "the model name has a control or invisible"),
        ({"kind": "openai", "model": "m\u200bo"}, "the model name has a control or invisible"),
        ({"kind": "openai", "model": "m", "api_key_env": "A B=C"}, "invisible character or space"),
        ({"kind": "openai", "model": "m", "api_key_env": "A=B"}, "has no '=' in it"),
    ],
)
def test_paths_and_names_no_os_takes_are_refused(changes: dict, reason: str):
    base = {"base_url": "http://127.0.0.1:8080/v1"} if changes.get("kind") == "openai" else {}
    with pytest.raises(TeacherError, match=reason):
        TeacherConfig(**base, **changes).validate()


def test_a_model_path_too_long_for_the_os_is_a_clear_error():
    with pytest.raises(TeacherError, match="cannot read the model file x+: File name too long"):
        LlamaCppTeacher(Path("x" * 5000)).load()  # past the OS's limit, not the settings'


# -- a context past the one the model was trained on -------------------------------------------


def test_the_trained_context_is_read_from_the_gguf_header(tiny_gguf: Path, tmp_path: Path):
    assert trained_context(tiny_gguf) == TINY_CONTEXT
    shipped = default_local_model()
    if shipped is not None:
        assert trained_context(shipped) == 8192  # SmolLM2-135M-Instruct
    whole = tiny_gguf.read_bytes()
    for name, data in [("cut.gguf", whole[:60]), ("text.gguf", b"hello"), ("empty.gguf", b"")]:
        assert trained_context(_write(tmp_path / name, data)) is None
    fifo = tmp_path / "fifo.gguf"
    os.mkfifo(fifo)
    assert trained_context(fifo) is None  # not opened: its read would never end
    assert trained_context(tmp_path) is None


def test_a_context_past_the_trained_one_is_noted_before_loading(tiny_gguf: Path):
    assert context_note(tiny_gguf, TINY_CONTEXT) is None
    note = context_note(tiny_gguf, 2 * TINY_CONTEXT)
    assert note == (
        "a context of 8,192 tokens is more than tiny.gguf was trained on (4,096): replies "
        "past 4,096 tokens degrade, and the rest of the context takes memory for nothing; "
        "try a context of 4,096 tokens (--n-ctx 4096)"
    )


def test_a_context_that_does_not_load_says_so_not_damaged(tiny_gguf: Path):
    # llama-cpp-python's own words when the weights loaded and the context did not
    failed = ValueError("Failed to create llama_context")
    message = str(load_error(tiny_gguf, 262_144, failed))
    assert message == (
        "llama.cpp could not load tiny.gguf with a context of 262,144 tokens: the model was "
        "trained on 4,096, and a context this large needs more memory than this machine gave "
        "it; try a context of 4,096 tokens (--n-ctx 4096)"
    )
    within = str(load_error(tiny_gguf, 2048, MemoryError()))
    assert "with a context of 2,048 tokens: it needs more memory" in within
    damaged = str(load_error(tiny_gguf, 262_144, ValueError("Failed to load model from file")))
    assert "the file is damaged" in damaged and "context" not in damaged
