"""The running basket a POS keeps: a product is added on item_present, never twice for one event_id; an
item_unknown calls the attendant with its pick list (or, for an item split between known products, asks for a pick)
and adds nothing."""

from __future__ import annotations

from collections import Counter
from typing import Optional

from stream.pipeline.result import REASON_AMBIGUOUS


class Basket:
    """Products added from `item_present` events, idempotent per event_id (repeats and replays are ignored)."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self._seen: set[str] = set()

    def apply(self, payload: dict) -> Optional[str]:
        """Take one published message; return the product added, or None when it adds nothing."""
        if payload.get("type") != "event" or payload.get("event") != "item_present":
            return None
        event_id = payload.get("event_id")
        if not event_id or event_id in self._seen:
            return None
        self._seen.add(event_id)
        self.items.append(str(payload.get("label")))
        return self.items[-1]

    def describe(self) -> str:
        """`2 x cola can, 1 x milk carton (3 items)`."""
        counts = Counter(self.items)
        listed = ", ".join(f"{count} x {label}" for label, count in counts.items())
        return f"{listed} ({len(self.items)} item{'s' if len(self.items) != 1 else ''})"

    def line_for(self, payload: dict) -> Optional[str]:
        """The line a POS prints for a message: `+ cola can  | basket: …`, `? unknown item — attendant …`, or None."""
        if payload.get("type") == "event" and payload.get("event") == "item_unknown":
            return self._attendant_line(payload)
        added = self.apply(payload)
        if added is None:
            return None
        camera = payload.get("camera", "?")
        return f"+ {added:<16} [{camera}, score {payload.get('score', 0):.2f}]  basket: {self.describe()}"

    def _attendant_line(self, payload: dict) -> Optional[str]:
        event_id = payload.get("event_id")
        if not event_id or event_id in self._seen:
            return None
        self._seen.add(event_id)
        picks = ", ".join(str(c.get("label")) for c in payload.get("candidates", []))
        if payload.get("reason") == REASON_AMBIGUOUS:
            return (f"? which product? — pick one or call the attendant [{payload.get('camera', '?')}]  pick list: "
                    f"{picks or 'none'}  basket: {self.describe()}")
        return (f"? unknown item — attendant [{payload.get('camera', '?')}]  pick list: {picks or 'none'}"
                f"  basket: {self.describe()}")
