"""The endpoints: one ``_h_<path>`` method per route (``/api/tags``, ``/api/ps``, ``/api/show``,
``/api/generate``, ``/api/chat``, ``/api/embed``, ``/api/embeddings``, ``/api/delete``,
``/v1/chat/completions``, ...), with Ollama's JSON shapes and error texts. The fake
generation and embeddings are stand-ins.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .durations import NS_PER_SECOND, _now_utc, format_go_time
from .gojson import (
    _CHAT_FIELDS,
    _DELETE_FIELDS,
    _EMBED_FIELDS,
    _EMBEDDINGS_FIELDS,
    _EOF,
    _GENERATE_FIELDS,
    _SHOW_FIELDS,
    _decode_go_json,
    _dumps,
    _go_quote,
    _json_kind,
)
from .models import FakeModel, _parameter_count
from .routes import _MODEL_PROBLEMS, _WORDS
from .scheduler import _Canceled, _Ctx, _Runner, _ScheduleError

if TYPE_CHECKING:
    from .server import _Handler


class EndpointsMixin:
    """The route handlers, as part of ``FakeOllama``."""

    # ---------------------------------------------------------------- simple endpoints

    def _h_(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        self._send(h, 200, b"Ollama is running", "text/plain; charset=utf-8")

    def _h_api_version(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        self._send_json(h, 200, {"version": self.version})

    def _details(self, m: FakeModel) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": m.format,
            "family": m.family,
            "families": [m.family],
            "parameter_size": m.parameter_size,
            "quantization_level": m.quantization_level,
        }

    def _h_api_tags(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        with self._cond:
            entries = [(self._modified_at[k], m) for k, m in self._models.items()]
        entries.sort(key=lambda e: -(e[0] // NS_PER_SECOND))
        models = [
            {
                "name": m.short_name,
                "model": m.short_name,
                "modified_at": format_go_time(mod, self.utc_offset_minutes),
                "size": m.file_size,
                "digest": m.digest,
                "details": self._details(m),
            }
            for mod, m in entries
        ]
        self._send_json(h, 200, {"models": models})

    def _h_api_ps(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        now = time.time_ns()
        with self._cond:
            entries = []
            for r in self._runners.values():
                expires = r.expires_at if r.expires_at is not None else now + r.duration
                entries.append(
                    (
                        expires,
                        {
                            "name": r.model.short_name,
                            "model": r.model.short_name,
                            "size": r.size,
                            "digest": r.model.digest,
                            "details": self._details(r.model),
                            "expires_at": format_go_time(expires, self.utc_offset_minutes),
                            "size_vram": r.size_vram,
                            "context_length": r.context_length,
                        },
                    )
                )
        # Go: SortStableFunc on ExpiresAt.Unix(), longest remaining first
        entries.sort(key=lambda e: -(e[0] // NS_PER_SECOND))
        self._send_json(h, 200, {"models": [e[1] for e in entries]})

    def _h_api_show(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        req = self._bind_request(h, body, "ShowRequest", _SHOW_FIELDS)
        if req is None:
            return
        name = req.get("model") or req.get("name") or ""
        if not name:
            self._send_error(h, 400, "model is required")
            return
        m, problem = self._lookup(name)
        if problem == "invalid":
            self._send_error(h, 400, "invalid model name")
            return
        if m is None:
            # real 0.24.0 echoes the name as sent (transcript 27c)
            self._send_error(h, 404, f"model '{name}' not found")
            return
        self._send_json(h, 200, self._show_response(m))

    def _show_response(self, m: FakeModel) -> dict[str, Any]:
        fam = m.family
        blob = hashlib.sha256(f"blob:{m.digest}".encode()).hexdigest()
        embedding = "embedding" in m.capabilities
        info: dict[str, Any] = {
            "general.architecture": fam,
            "general.file_type": 15 if m.quantization_level == "Q4_K_M" else 0,
            "general.parameter_count": _parameter_count(m.parameter_size),
            f"{fam}.attention.head_count": 4,
            f"{fam}.attention.head_count_kv": 4,
            f"{fam}.block_count": 2,
            f"{fam}.context_length": m.context_length,
            f"{fam}.embedding_length": m.embedding_length,
            f"{fam}.feed_forward_length": 2 * m.embedding_length,
            "tokenizer.ggml.model": "bert" if embedding else "llama",
            "tokenizer.ggml.tokens": None,
        }
        if embedding:
            info[f"{fam}.attention.causal"] = False
            info[f"{fam}.attention.layer_norm_epsilon"] = 1e-12
            info[f"{fam}.pooling_type"] = 1
        else:
            info[f"{fam}.attention.layer_norm_rms_epsilon"] = 0.00001
            info[f"{fam}.rope.freq_base"] = 10000.0
        template = "{{ .Prompt }}"
        return {
            "modelfile": (
                '# Modelfile generated by "ollama show"\n'
                "# To build a new Modelfile based on this, replace FROM with:\n"
                f"# FROM {m.short_name}\n\n"
                f"FROM $OLLAMA_MODELS/blobs/sha256-{blob}\n"
                f"TEMPLATE {template}\n"
            ),
            "template": template,
            "details": self._details(m),
            "model_info": dict(sorted(info.items())),
            "tensors": [
                {"name": "token_embd.weight", "type": "F32", "shape": [m.embedding_length, 329]},
                {"name": "output_norm.weight", "type": "F32", "shape": [m.embedding_length]},
            ],
            # Absent before 0.6.4 (contract §2.6): ``show_capabilities = False``.
            **(
                {"capabilities": list(m.capabilities)}
                if m.capabilities and self.show_capabilities
                else {}
            ),
            "modified_at": format_go_time(self._modified_at[m.key], self.utc_offset_minutes),
        }

    def _h_api_delete(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        req = self._bind_request(h, body, "DeleteRequest", _DELETE_FIELDS)
        if req is None:
            return
        name = req.get("model") or req.get("name") or ""
        m, problem = self._lookup(name)
        if problem == "empty":
            self._send_error(h, 400, "model is required")
        elif problem == "invalid":
            self._send_error(h, 400, f"name {_go_quote(name)} is invalid")
        elif m is None:
            self._send_error(h, 404, f"model '{name}' not found")
        else:
            self.remove_model(name)
            self._send(h, 200, b"", None)

    # ---------------------------------------------------------------- inference endpoints

    def _schedule_or_answer(
        self,
        h: _Handler,
        ctx: _Ctx,
        m: FakeModel,
        keep_alive: int | None,
        opts: dict[str, Any],
        error: Callable[[int, str], None] | None = None,
    ) -> _Runner | None:
        send = error or (lambda status, msg: self._send_error(h, status, msg))
        try:
            runner = self._get_runner(ctx, m, keep_alive, opts)
        except _Canceled:
            if not ctx.stop.is_set():
                with contextlib.suppress(OSError):
                    send(499, "request canceled")
            h.close_connection = True
            return None
        except _ScheduleError as exc:
            send(exc.status, exc.message)
            return None
        h.fake_runner = runner
        try:
            self._wait_released(ctx, self._held_requests, m)  # hold_requests()
        except _Canceled:
            self._schedule_finish(ctx, h)
            h.close_connection = True
            return None
        return runner

    def _check_think(self, h: _Handler, name: str, m: FakeModel, think: Any) -> bool:
        wants = think is True or (isinstance(think, str) and think not in ("", "false"))
        if wants and "thinking" not in m.capabilities:
            self._send_error(h, 400, f"{_go_quote(name)} does not support thinking")
            return False
        return True

    def _h_api_generate(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        start = time.monotonic_ns()
        req = self._bind_request(h, body, "GenerateRequest", _GENERATE_FIELDS)
        if req is None:
            return
        name = req.get("model", "")
        m, problem = self._lookup(name)
        if problem == "invalid":
            self._send_error(h, 400, "invalid model name")
            return
        if m is None:
            self._send_error(h, 404, f"model '{name}' not found")
            return
        keep_alive = req.get("keep_alive")
        prompt = req.get("prompt", "")
        if prompt == "" and keep_alive == 0:
            self._expire_runner(ctx, m)
            self._send_json(
                h,
                200,
                {
                    "model": name,
                    "created_at": _now_utc(),
                    "response": "",
                    "done": True,
                    "done_reason": "unload",
                },
            )
            return
        if "completion" not in m.capabilities:
            self._send_error(h, 400, f"{_go_quote(name)} does not support generate")
            return
        if not self._check_think(h, name, m, req.get("think")):
            return
        opts, err = self._parse_options(req.get("options"))
        if err:
            self._send_error(h, 500, err)
            return
        runner = self._schedule_or_answer(h, ctx, m, keep_alive, opts)
        if runner is None:
            return
        try:
            loaded = time.monotonic_ns()
            if prompt == "":
                self._send_json(
                    h,
                    200,
                    {
                        "model": name,
                        "created_at": _now_utc(),
                        "response": "",
                        "done": True,
                        "done_reason": "load",
                    },
                )
            else:
                stream = req.get("stream", True)
                self._generate(h, ctx, name, prompt, opts, stream, start, loaded, chat=False)
        finally:
            self._schedule_finish(ctx, h)

    def _h_api_chat(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        start = time.monotonic_ns()
        req = self._bind_request(h, body, "ChatRequest", _CHAT_FIELDS)
        if req is None:
            return
        messages = req.get("messages") or []
        for item in messages:
            if not isinstance(item, dict):
                self._send_error(
                    h,
                    400,
                    f"json: cannot unmarshal {_json_kind(item)} into Go struct field "
                    "ChatRequest.messages of type api.Message",
                )
                return
        name = req.get("model", "")
        m, problem = self._lookup(name)
        if problem in ("empty", "invalid"):
            self._send_error(h, 400, _MODEL_PROBLEMS[problem])
            return
        if m is None:
            self._send_error(h, 404, f"model '{name}' not found")
            return
        keep_alive = req.get("keep_alive")
        if not messages and keep_alive == 0:
            self._expire_runner(ctx, m)
            self._send_json(h, 200, self._chat_reply(name, "", "unload"))
            return
        if "completion" not in m.capabilities:
            self._send_error(h, 400, f"{_go_quote(name)} does not support chat")
            return
        if req.get("tools") and "tools" not in m.capabilities:
            self._send_error(h, 400, f"{m.full_name} does not support tools")
            return
        if not self._check_think(h, name, m, req.get("think")):
            return
        opts, err = self._parse_options(req.get("options"))
        if err:
            self._send_error(h, 500, err)
            return
        runner = self._schedule_or_answer(h, ctx, m, keep_alive, opts)
        if runner is None:
            return
        try:
            loaded = time.monotonic_ns()
            if not messages:
                self._send_json(h, 200, self._chat_reply(name, "", "load"))
            else:
                text = " ".join(str(x.get("content") or "") for x in messages)
                stream = req.get("stream", True)
                self._generate(h, ctx, name, text, opts, stream, start, loaded, chat=True)
        finally:
            self._schedule_finish(ctx, h)

    @staticmethod
    def _chat_reply(name: str, content: str, reason: str) -> dict[str, Any]:
        return {
            "model": name,
            "created_at": _now_utc(),
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": reason,
        }

    def _generate(
        self,
        h: _Handler,
        ctx: _Ctx,
        name: str,
        text: str,
        opts: dict[str, Any],
        stream: bool,
        start: int,
        loaded: int,
        *,
        chat: bool,
    ) -> None:
        """Simulate ``num_predict`` tokens, ``token_delay`` seconds each."""
        count = opts["num_predict"]
        reason = "length"
        if count < 0:  # -1/-2: until the model stops on its own
            count, reason = 16, "stop"
        pieces = [_WORDS[i % len(_WORDS)] for i in range(count)]
        prompt_tokens = len(text.split()) + 5
        gen_start = time.monotonic_ns()

        def piece_obj(piece: str) -> dict[str, Any]:
            if chat:
                return {
                    "model": name,
                    "created_at": _now_utc(),
                    "message": {"role": "assistant", "content": piece},
                    "done": False,
                }
            return {"model": name, "created_at": _now_utc(), "response": piece, "done": False}

        def final_obj(content: str) -> dict[str, Any]:
            end = time.monotonic_ns()
            obj: dict[str, Any] = {"model": name, "created_at": _now_utc()}
            if chat:
                obj["message"] = {"role": "assistant", "content": content}
            else:
                obj["response"] = content
            obj["done"] = True
            obj["done_reason"] = reason
            if not chat:
                obj["context"] = [256 + (i * 37) % 73 for i in range(prompt_tokens + count)]
            obj["total_duration"] = end - start
            obj["load_duration"] = loaded - start
            obj["prompt_eval_count"] = prompt_tokens
            obj["prompt_eval_duration"] = max(1, (gen_start - loaded) // 2)
            obj["eval_count"] = count
            obj["eval_duration"] = end - gen_start
            return obj

        if not stream:
            for _ in pieces:
                if not self._sleep(ctx, self.token_delay):
                    raise _Canceled()
            self._send_json(h, 200, final_obj("".join(pieces)))
            return
        with self._cond:
            stream_error = self._stream_errors.pop(0) if self._stream_errors else None
        self._start_stream(h, "application/x-ndjson")
        for piece in pieces:
            if not self._sleep(ctx, self.token_delay):
                raise _Canceled()
            self._write_chunk(h, _dumps(piece_obj(piece)) + b"\n")
            if stream_error is not None:
                break
        if stream_error is not None:
            self._write_chunk(h, _dumps({"error": stream_error}) + b"\n")
        else:
            self._write_chunk(h, _dumps(final_obj("")) + b"\n")
        self._end_stream(h)

    def _embedding(self, text: str, dims: int) -> list[float]:
        seed = hashlib.sha256(text.encode()).digest()
        raw = [(seed[i % 32] ^ (i * 131 % 256)) / 255.0 - 0.5 for i in range(max(1, dims))]
        norm = math.sqrt(sum(x * x for x in raw)) or 1.0
        return [round(x / norm, 8) for x in raw]

    def _h_api_embed(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        start = time.monotonic_ns()
        req = self._bind_request(h, body, "EmbedRequest", _EMBED_FIELDS)
        if req is None:
            return
        name = req.get("model", "")
        m, problem = self._lookup(name)
        if problem == "empty":
            self._send_error(h, 404, "model '' not found")
            return
        if problem == "invalid":
            self._send_error(h, 400, "invalid model name")
            return
        raw_input = req.get("input")
        inputs: list[str] = []
        if isinstance(raw_input, str):
            inputs = [raw_input] if raw_input else []
        elif isinstance(raw_input, list):
            if not all(isinstance(x, str) for x in raw_input):
                self._send_error(h, 400, "invalid input type")
                return
            inputs = list(raw_input)
        elif raw_input is not None:
            self._send_error(h, 400, "invalid input type")
            return
        if m is None:
            self._send_error(h, 404, f"model {_go_quote(name)} not found, try pulling it first")
            return
        opts, err = self._parse_options(req.get("options"))
        if err:
            self._send_error(h, 500, err)
            return
        # no unload shortcut here: keep_alive 0 loads (if needed), then unloads once idle
        runner = self._schedule_or_answer(h, ctx, m, req.get("keep_alive"), opts)
        if runner is None:
            return
        try:
            loaded = time.monotonic_ns()
            if not inputs:
                self._send_json(h, 200, {"model": name, "embeddings": []})
                return
            for _ in inputs:
                if not self._sleep(ctx, self.token_delay):
                    raise _Canceled()
            self._send_json(
                h,
                200,
                {
                    "model": name,
                    "embeddings": [self._embedding(x, m.embedding_length) for x in inputs],
                    "total_duration": time.monotonic_ns() - start,
                    "load_duration": loaded - start,
                    "prompt_eval_count": sum(len(x.split()) + 2 for x in inputs),
                },
            )
        finally:
            self._schedule_finish(ctx, h)

    def _h_api_embeddings(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        req = self._bind_request(h, body, "EmbeddingRequest", _EMBEDDINGS_FIELDS)
        if req is None:
            return
        name = req.get("model", "")
        m, problem = self._lookup(name)
        if problem in ("empty", "invalid"):
            self._send_error(h, 400, _MODEL_PROBLEMS[problem])
            return
        if m is None:
            self._send_error(h, 404, f"model {_go_quote(name)} not found, try pulling it first")
            return
        opts, err = self._parse_options(req.get("options"))
        if err:
            self._send_error(h, 500, err)
            return
        runner = self._schedule_or_answer(h, ctx, m, req.get("keep_alive"), opts)
        if runner is None:
            return
        try:
            prompt = req.get("prompt", "")
            if prompt == "":
                self._send_json(h, 200, {"embedding": []})
                return
            if not self._sleep(ctx, self.token_delay):
                raise _Canceled()
            self._send_json(h, 200, {"embedding": self._embedding(prompt, m.embedding_length)})
        finally:
            self._schedule_finish(ctx, h)

    def _h_v1_chat_completions(self, h: _Handler, body: bytes, ctx: _Ctx) -> None:
        """OpenAI-compatible chat (approximate shapes). Never carries a keep_alive."""

        def oa_error(status: int, message: str) -> None:
            kind = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
            self._send_json(
                h,
                status,
                {"error": {"message": message, "type": kind, "param": None, "code": None}},
            )

        value, err = _decode_go_json(body)
        if value is _EOF or err is not None or not isinstance(value, dict):
            oa_error(400, err or "EOF")
            return
        raw_name, raw_messages = value.get("model"), value.get("messages")
        name: str = raw_name if isinstance(raw_name, str) else ""
        messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
        m, problem = self._lookup(name)
        if problem in ("empty", "invalid"):
            oa_error(400, "model is required" if problem == "empty" else "invalid model name")
            return
        if m is None:
            oa_error(404, f"model '{name}' not found")
            return
        if "completion" not in m.capabilities:
            oa_error(400, f"{_go_quote(name)} does not support chat")
            return
        raw_opts: dict[str, Any] = {}
        if isinstance(value.get("max_tokens"), int):
            raw_opts["num_predict"] = value["max_tokens"]
        opts, _ = self._parse_options(raw_opts)
        runner = self._schedule_or_answer(h, ctx, m, None, opts, error=oa_error)
        if runner is None:
            return
        try:
            count = opts["num_predict"] if messages else 0
            pieces = [_WORDS[i % len(_WORDS)] for i in range(max(count, 0))]
            finish = "length" if messages else "load"
            created = int(time.time())
            base = {"id": "chatcmpl-42", "created": created, "model": name}
            base["system_fingerprint"] = "fp_ollama"
            if value.get("stream") is True:
                self._start_stream(h, "text/event-stream")
                for piece in pieces:
                    if not self._sleep(ctx, self.token_delay):
                        raise _Canceled()
                    chunk = {
                        **base,
                        "object": "chat.completion.chunk",
                        "choices": [
                            {
                                "index": 0,
                                "delta": {"role": "assistant", "content": piece},
                                "finish_reason": None,
                            }
                        ],
                    }
                    self._write_chunk(h, b"data: " + _dumps(chunk) + b"\n\n")
                last = {
                    **base,
                    "object": "chat.completion.chunk",
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": finish,
                        }
                    ],
                }
                self._write_chunk(h, b"data: " + _dumps(last) + b"\n\n")
                self._write_chunk(h, b"data: [DONE]\n\n")
                self._end_stream(h)
                return
            for _ in pieces:
                if not self._sleep(ctx, self.token_delay):
                    raise _Canceled()
            prompt_tokens = sum(len(str(x.get("content", "")).split()) for x in messages) + 5
            self._send_json(
                h,
                200,
                {
                    "id": base["id"],
                    "object": "chat.completion",
                    "created": created,
                    "model": name,
                    "system_fingerprint": "fp_ollama",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(pieces)},
                            "finish_reason": finish,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": len(pieces),
                        "total_tokens": prompt_tokens + len(pieces),
                    },
                },
            )
        finally:
            self._schedule_finish(ctx, h)
