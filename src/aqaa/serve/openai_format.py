"""OpenAI audio chat format ↔ aqaa: requests to a question + history, answers to responses.

A request is what the official `openai` client sends to `POST /v1/chat/completions`:

    {"model": "aqaa", "modalities": ["text", "audio"], "audio": {"voice": "alloy", "format": "wav"},
     "messages": [{"role": "system", "content": "…"},
                  {"role": "user", "content": [{"type": "input_audio",
                                                "input_audio": {"data": "<base64>", "format": "wav"}}]},
                  {"role": "assistant", "audio": {"id": "audio_…"}},      # an earlier answer
                  {"role": "user", "content": [...]}],
     "stream": false}

The last user message must carry audio (aqaa hears, it does not read); earlier user messages may
be audio or text. An earlier assistant message is taken as its text: `content`, else the transcript
remembered for its `audio.id`. The voice is always aqaa's own; `audio.format` picks the container of a
non-streamed answer (`wav`, `flac`, `pcm16`); streamed audio deltas are base64 PCM16, 24 kHz mono,
as in OpenAI's API.
"""

from __future__ import annotations

import base64
import binascii
import io
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import soundfile as sf

OUTPUT_FORMATS = ("wav", "flac", "pcm16")


class RequestError(ValueError):
    """A request the client must fix (HTTP 400), with an OpenAI-style error `param`."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


@dataclass
class HistoryTurn:
    """An earlier exchange: the user's audio bytes or text, and the assistant's text."""

    audio: bytes | None
    text: str | None
    answer_text: str


@dataclass
class ChatRequest:
    question: bytes  # encoded audio of the last user message
    history: list[HistoryTurn] = field(default_factory=list)
    system: str | None = None
    stream: bool = False
    audio_out: bool = True
    output_format: str = "wav"
    seed: int | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    model: str = "aqaa"


class TranscriptMemory:
    """Transcripts of recent answers by audio id, for multi-turn requests that refer to them."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._d: OrderedDict[str, str] = OrderedDict()

    def put(self, audio_id: str, text: str) -> None:
        self._d[audio_id] = text
        self._d.move_to_end(audio_id)
        while len(self._d) > self.size:
            self._d.popitem(last=False)

    def get(self, audio_id: str) -> str | None:
        return self._d.get(audio_id)


def _decode_b64(data: Any, param: str) -> bytes:
    if not isinstance(data, str) or not data:
        raise RequestError("input_audio.data must be a non-empty base64 string", param)
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise RequestError("input_audio.data is not valid base64", param) from None


def _user_content(content: Any, i: int) -> tuple[bytes | None, str | None]:
    """(audio bytes, text) of a user message's content."""
    if isinstance(content, str):
        return None, content
    if not isinstance(content, list):
        raise RequestError("user content must be a string or a list of parts", f"messages[{i}]")
    audio, texts = None, []
    for j, part in enumerate(content):
        where = f"messages[{i}].content[{j}]"
        if not isinstance(part, dict):
            raise RequestError("a content part must be an object", where)
        kind = part.get("type")
        if kind == "input_audio":
            ia = part.get("input_audio") or {}
            fmt = ia.get("format", "wav")
            if fmt not in ("wav", "mp3", "flac", "ogg"):
                raise RequestError(f"unsupported input_audio.format {fmt!r}", where)
            audio = _decode_b64(ia.get("data"), where)
        elif kind == "text":
            texts.append(str(part.get("text", "")))
        else:
            raise RequestError(f"unsupported content part type {kind!r}", where)
    return audio, " ".join(t for t in texts if t) or None


def _assistant_text(msg: dict, memory: TranscriptMemory, i: int) -> str:
    content = msg.get("content")
    if isinstance(content, str) and content:
        return content
    if isinstance(content, list):
        text = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if text.strip():
            return text
    audio = msg.get("audio") or {}
    if audio.get("transcript"):
        return str(audio["transcript"])
    if audio.get("id") and (t := memory.get(str(audio["id"]))) is not None:
        return t
    raise RequestError(
        "an assistant message needs text content, or the audio id of a recent answer",
        f"messages[{i}]",
    )


def parse_request(body: Any, memory: TranscriptMemory) -> ChatRequest:
    """Validate a chat completion request; raise `RequestError` with what to fix."""
    if not isinstance(body, dict):
        raise RequestError("the request body must be a JSON object")
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise RequestError("messages must be a non-empty list", "messages")
    modalities = body.get("modalities") or ["text", "audio"]
    if not set(modalities) <= {"text", "audio"}:
        raise RequestError("modalities may contain only 'text' and 'audio'", "modalities")
    audio_cfg = body.get("audio") or {}
    fmt = audio_cfg.get("format", "wav")
    if fmt not in OUTPUT_FORMATS:
        raise RequestError(f"audio.format must be one of {', '.join(OUTPUT_FORMATS)}", "audio")
    system = None
    history: list[HistoryTurn] = []
    pending: tuple[bytes | None, str | None] | None = None
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise RequestError("a message must be an object", f"messages[{i}]")
        role = m.get("role")
        if role in ("system", "developer"):
            c = m.get("content")
            system = c if isinstance(c, str) else " ".join(
                str(p.get("text", "")) for p in c or [] if isinstance(p, dict)
            )  # fmt: skip
        elif role == "user":
            if pending is not None:  # two user messages in a row: the first gets no answer
                history.append(HistoryTurn(pending[0], pending[1], ""))
            pending = _user_content(m.get("content"), i)
        elif role == "assistant":
            if pending is None:
                raise RequestError(
                    "an assistant message must follow a user message", f"messages[{i}]"
                )
            history.append(HistoryTurn(pending[0], pending[1], _assistant_text(m, memory, i)))
            pending = None
        else:
            raise RequestError(f"unsupported role {role!r}", f"messages[{i}]")
    if pending is None:
        raise RequestError("the last message must be from the user", "messages")
    if pending[0] is None:
        raise RequestError(
            "the last user message needs an input_audio part: aqaa answers spoken questions",
            "messages",
        )

    def opt_num(key: str, kind: type) -> Any:
        v = body.get(key)
        if v is None:
            return None
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise RequestError(f"{key} must be a number", key)
        return kind(v)

    max_tokens = opt_num("max_completion_tokens", int) or opt_num("max_tokens", int)
    if max_tokens is not None and max_tokens < 1:
        raise RequestError("max_tokens must be positive", "max_tokens")
    return ChatRequest(
        question=pending[0],
        history=history,
        system=system,
        stream=bool(body.get("stream", False)),
        audio_out="audio" in modalities,
        output_format=fmt,
        seed=opt_num("seed", int),
        temperature=opt_num("temperature", float),
        max_tokens=max_tokens,
        model=str(body.get("model", "aqaa")),
    )


def encode_audio(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    """Samples → bytes of a whole file (`wav`, `flac`) or raw little-endian PCM16 (`pcm16`)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    if fmt == "pcm16":
        return pcm.tobytes()
    buf = io.BytesIO()
    sf.write(buf, pcm, rate, format=fmt.upper(), subtype="PCM_16")
    return buf.getvalue()


def new_ids() -> tuple[str, str]:
    """(completion id, audio id)."""
    h = uuid.uuid4().hex
    return f"chatcmpl-{h[:24]}", f"audio_{h[8:32]}"


def completion(
    req: ChatRequest, cid: str, audio_id: str, text: str, audio_b64: str | None,
    usage: dict[str, int], finish: str = "stop",
) -> dict[str, Any]:  # fmt: skip
    """A non-streamed `chat.completion` object."""
    msg: dict[str, Any] = {"role": "assistant", "content": None if audio_b64 else text,
                           "refusal": None}  # fmt: skip
    if audio_b64 is not None:
        msg["audio"] = {"id": audio_id, "data": audio_b64, "expires_at": int(time.time()) + 3600,
                        "transcript": text}  # fmt: skip
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": req.model,
        "choices": [{"index": 0, "message": msg, "finish_reason": finish, "logprobs": None}],
        "usage": usage,
    }


def chunk(req: ChatRequest, cid: str, delta: dict[str, Any], finish: str | None = None) -> dict:
    """One streamed `chat.completion.chunk` object."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": req.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
