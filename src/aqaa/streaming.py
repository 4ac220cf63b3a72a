"""The one streaming abstraction shared by the tokenizer, the LM and the vocoder.

Every streaming stage is an object with typed state that takes input piece by piece:

    out = stage.push(piece)     # whatever became final because of this piece
    out = stage.flush()         # the end of the input: whatever remains; the stage is then done

- tokenizer (`aqaa.tokenizer.dual.TokenizerStream`): 16 kHz samples → interleaved audio codes;
- LM (`aqaa.engine.lm_stream.ResponseStream`): prompt ids → response tokens, one step per push;
- vocoder (`aqaa.vocoder.stream.StreamDecoder`): audio codes → lists of 24 kHz sample chunks.

`aqaa.engine` chains them; a server does the same over a socket.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

In = TypeVar("In", contravariant=True)
Out = TypeVar("Out", covariant=True)


@runtime_checkable
class Stream(Protocol[In, Out]):
    """A stateful stage: `push` input as it arrives, `flush` once at the end."""

    def push(self, piece: In) -> Out: ...

    def flush(self) -> Out: ...
