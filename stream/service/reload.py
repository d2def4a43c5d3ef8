"""Reload (SIGHUP, `systemctl reload`, POST /api/reload): re-read the config; a changed `[model]` loads in the
background and swaps in between batches, other changes are named as needing a restart."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

from config.loader import ConfigError
from config.schema import AppConfig
from stream.service.models import ModelManager

log = logging.getLogger(__name__)

LIVE_SECTIONS = ("model",)
"""Config sections a reload applies without a restart."""


RESTART_MODEL_KEYS = ("threads", "lanes")
"""`[model]` keys that shape the worker's threads: applied at the next start only."""


def changed_sections(old: AppConfig, new: AppConfig) -> list[str]:
    """The top-level config sections (and `cameras`) that differ; `model.threads`/`model.lanes` on their own."""
    old_data, new_data = old.model_dump(), new.model_dump()
    changed = [key for key in old_data if key != "model" and old_data[key] != new_data.get(key)]
    old_model, new_model = old_data["model"], new_data["model"]
    changed += [f"model.{key}" for key in RESTART_MODEL_KEYS if old_model[key] != new_model[key]]
    if any(old_model[key] != new_model[key] for key in old_model if key not in RESTART_MODEL_KEYS):
        changed.append("model")
    return changed


class ReloadThread(threading.Thread):
    """Waits for `requested` (set by SIGHUP or the web API) and reloads; runs until `stop` is set.

    `notify(True)` / `notify(False)` bracket each reload."""

    def __init__(self, config: AppConfig, reread: Callable[[], AppConfig], models: ModelManager,
                 requested: threading.Event, stop: threading.Event) -> None:
        super().__init__(name="reload", daemon=True)
        self.config = config
        self._reread, self._models, self._requested, self._stop_event = reread, models, requested, stop
        self.notify: Callable[[bool], None] = lambda _reloading: None
        """Told True when a reload starts and False when it ends (systemd's RELOADING=1 … READY=1)."""
        self.reloads = 0

    def run(self) -> None:
        while not self._stop_event.is_set():
            if not self._requested.wait(0.2):
                continue
            self._requested.clear()
            if self._stop_event.is_set():
                return
            self.notify(True)
            try:
                self.reload_once()
            except Exception:
                log.exception("reload failed; the service goes on as it was")
            finally:
                self.notify(False)

    def reload_once(self) -> Optional[AppConfig]:
        """Re-read the config and apply what can be applied live; returns the config now in force."""
        log.info("reload: re-reading the configuration")
        try:
            new = self._reread()
        except (ConfigError, OSError) as exc:
            log.error("reload refused: the configuration is invalid (%s); nothing changed", exc)
            self._models.slot.set_note(f"reload refused: invalid configuration: {exc}")
            return self.config
        changed = changed_sections(self.config, new)
        self.reloads += 1
        later = [section for section in changed if section not in LIVE_SECTIONS]
        if later:
            log.warning("reload: changes to %s need a restart (systemctl restart streamrec); not applied now",
                        ", ".join(f"[{section}]" for section in later))
        if "model" not in changed:
            log.info("reload: [model] is unchanged")
            return self.config
        if self._models.reload(new.model):
            kept = {key: getattr(self.config.model, key) for key in RESTART_MODEL_KEYS}
            self.config = self.config.model_copy(update={"model": new.model.model_copy(update=kept)})
        return self.config
