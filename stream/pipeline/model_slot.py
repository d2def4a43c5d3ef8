"""The model the worker runs now: swapped between batches (a faster path, a reloaded config), with the state that
heartbeats, the web page and systemd's status report."""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from typing import Any, Optional

from inference.model import Classifier, serving_path

log = logging.getLogger(__name__)

_NONE_FAILING = object()


class ModelState(str, enum.Enum):
    """Whether results can come from the model (the heartbeat's `model.state`)."""

    LOADING = "loading"
    READY = "ready"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class ModelStatus:
    """A snapshot of the model in use, as heartbeats carry it."""

    id: str
    backend: str
    precision: str
    state: ModelState
    optimizing: bool
    note: str = ""
    """The last thing worth telling an operator (a refused reload, a failed optimization), or ""."""

    def wire(self) -> dict[str, Any]:
        """The heartbeat's `model` object."""
        return {"id": self.id, "backend": self.backend, "precision": self.precision, "state": self.state.value,
                "optimizing": self.optimizing}

    def describe(self) -> str:
        """One phrase for logs and systemd's STATUS= line."""
        text = f"model {self.id} on {self.backend} {self.precision}"
        if self.state is not ModelState.READY:
            text += f" ({self.state.value})"
        return text + (", optimizing" if self.optimizing else "")


class ModelSlot:
    """Holds the classifier the worker uses for its next batch. A batch already prepared for the previous one
    still runs on it, so a swap leaves no gap and no batch is dropped."""

    def __init__(self, classifier: Optional[Classifier] = None) -> None:
        self._lock = threading.Lock()
        self._classifier = classifier
        self._optimizing = False
        self._note = ""
        self._failing: object = _NONE_FAILING
        self._catalog: Optional[Any] = None
        self.swaps = 0

    @property
    def current(self) -> Optional[Classifier]:
        """The classifier for the next batch (None until one is loaded)."""
        return self._classifier

    def swap(self, classifier: Classifier) -> None:
        """Run `classifier` from the next batch on."""
        with self._lock:
            self._classifier = classifier
            self.swaps += 1

    def set_catalog(self, catalog: Optional[Any]) -> None:
        """The open catalog (inference/open_catalog.py) of the model, used from the next batch on."""
        with self._lock:
            self._catalog = catalog

    def catalog_for(self, classifier: Classifier) -> Optional[Any]:
        """The open catalog when it belongs to `classifier` (same weights and trained labels), else None."""
        catalog = self._catalog
        if catalog is None or catalog.gallery.model_id != classifier.model_id:
            return None
        return catalog if tuple(catalog.head_labels) == tuple(classifier.labels) else None

    def set_optimizing(self, optimizing: bool) -> None:
        """Whether a faster path (or a reloaded model) is being built in the background."""
        with self._lock:
            self._optimizing = optimizing

    def set_note(self, note: str) -> None:
        """Remember the last thing worth telling an operator ("" clears it)."""
        with self._lock:
            self._note = note

    def report(self, classifier: Optional[Classifier], ok: bool) -> None:
        """How the last batch on `classifier` went: while the current model's batches fail (a model server that is
        down), the state is `unavailable`; the next batch that succeeds makes it `ready` again. `None` failing: no
        model could be loaded yet because its server does not answer."""
        with self._lock:
            if not ok:
                self._failing = classifier
            elif self._failing is classifier:
                self._failing = _NONE_FAILING

    def status(self) -> ModelStatus:
        """What heartbeats and status pages say about the model now."""
        with self._lock:
            classifier, optimizing, note = self._classifier, self._optimizing, self._note
            failing = self._failing is classifier
        if classifier is None:
            return ModelStatus("", "", "", ModelState.UNAVAILABLE if failing else ModelState.LOADING, optimizing, note)
        backend, precision = serving_path(classifier)
        state = ModelState.UNAVAILABLE if failing else ModelState.READY
        return ModelStatus(classifier.model_id, backend, precision, state, optimizing, note)
