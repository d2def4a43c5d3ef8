"""A served model (`triton:…`) and its server: start without the server when it does not answer yet, run the local
`model.fallback` while it is down, and switch back as soon as it answers again (through the model slot's swap,
between batches)."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from config.schema import ModelConfig
from inference.errors import ModelError
from inference.model import Classifier
from inference.remote import RemoteClassifier, ServerUnreachable, load_remote
from stream.pipeline.model_slot import ModelSlot, ModelState

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 0.25
"""How often the link looks at the model's state and, while the server is away, asks it again."""


class RemoteLink(threading.Thread):
    """Keeps the slot on the served model whenever its server answers, and on `fallback` (when given) otherwise."""

    def __init__(self, slot: ModelSlot, model: ModelConfig, stop: threading.Event,
                 remote: Optional[RemoteClassifier], fallback: Optional[Classifier] = None,
                 connect: Callable[[str, ModelConfig], RemoteClassifier] = load_remote,
                 interval_s: float = CHECK_INTERVAL_S) -> None:
        super().__init__(name="remote-link", daemon=True)
        self._slot, self._model, self._stop_event = slot, model, stop
        self._remote, self._fallback, self._connect, self._interval_s = remote, fallback, connect, interval_s
        self._last_refusal = ""
        if remote is None:
            self._while_unreachable()

    def run(self) -> None:
        while not self._stop_event.wait(self._interval_s):
            try:
                self.step()
            except Exception:  # a surprise here must not end the link: the next step tries again
                log.exception("checking the model server failed")

    def step(self) -> None:
        """One look: connect, fall back, or return to the server, whichever applies now."""
        current = self._slot.current
        if self._remote is None:
            self._try_connect()
        elif current is self._remote and self._fallback is not None and self._slot.status().state is ModelState.UNAVAILABLE:
            self._use_fallback(f"{self._remote.spec} does not answer")
        elif current is self._fallback and current is not None and self._remote.ready():
            self._use_remote("answers again")

    def _try_connect(self) -> None:
        try:
            self._remote = self._connect(self._model.spec, self._model)
        except ServerUnreachable:
            return
        except ModelError as exc:  # the server is up but not serving the model (yet): say so once, keep asking
            if str(exc) != self._last_refusal:
                log.warning("%s", exc)
                self._last_refusal = str(exc)
            return
        self._use_remote("answers")

    def _while_unreachable(self) -> None:
        if self._fallback is not None:
            self._use_fallback(f"{self._model.spec} does not answer")
        else:
            self._slot.report(None, ok=False)

    def _use_fallback(self, why: str) -> None:
        log.warning("%s: model %s (model.fallback) serves until it does", why, self._fallback.model_id)
        self._slot.set_note(f"model server unreachable: fallback {self._fallback.model_id} serves")
        self._slot.swap(self._fallback)

    def _use_remote(self, what: str) -> None:
        log.info("%s %s: model %s serves", self._remote.spec, what, self._remote.model_id)
        self._slot.set_note("")
        self._slot.report(self._remote, ok=True)  # it answered: its earlier failures are over
        self._slot.swap(self._remote)
