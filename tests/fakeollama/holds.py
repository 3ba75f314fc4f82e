"""Holds: the test, not the clock, decides when a load or a request ends.

``hold_loads()`` keeps loads in progress (listed by ``loading()``, state "loading" in
``loaded()`` with ``list_loading``) until ``release_loads()``; ``hold_requests()`` keeps requests
that got a runner (generate, chat, embed, embeddings, OpenAI chat) from answering, so their
runner stays busy (``in_use``) until ``release_requests()``. A held load or request still ends
at once when its client goes away or the server stops, as it would in Ollama. ``HoldsMixin`` is
part of ``FakeOllama``; its state (``_held_loads``, ``_held_requests``: sets of model keys, None
meaning every model) is created in ``FakeOllama.__init__`` and guarded by ``_cond``.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .names import _parse_name
from .scheduler import _Canceled, _Ctx

if TYPE_CHECKING:
    from collections.abc import Hashable

    from .models import FakeModel


def _key(model: str | None) -> Hashable:
    return None if model is None else _parse_name(model).key()


class HoldsMixin:
    """Gates a test opens (public: ``hold_loads``, ``release_loads``, ``hold_requests``,
    ``release_requests``, ``hold_path``, ``release_path``, ``waiting_on``)."""

    def hold_path(self, path: str) -> None:
        """Requests to ``path`` from now on wait, before they are handled, until released
        (or the server stops): a server that accepts and does not answer."""
        with self._cond:
            self._held_paths.add(path)

    def release_path(self, path: str | None = None) -> None:
        """End the hold on ``path``; None ends every path hold."""
        with self._cond:
            if path is None:
                self._held_paths.clear()
            else:
                self._held_paths.discard(path)
            self._cond.notify_all()

    def waiting_on(self, path: str) -> int:
        """How many requests to ``path`` are waiting on a hold now."""
        with self._cond:
            return self._waiting.get(path, 0)

    def _wait_path(self, path: str, stop: threading.Event) -> bool:
        """Block while ``path`` is held; True when the server stopped meanwhile."""
        with self._cond:
            if path not in self._held_paths:
                return False
            self._waiting[path] = self._waiting.get(path, 0) + 1
            try:
                while path in self._held_paths and not stop.is_set():
                    self._cond.wait(0.02)
            finally:
                self._waiting[path] -= 1
            return stop.is_set()

    def hold_loads(self, model: str | None = None) -> None:
        """Loads of ``model`` (every model if None) that start from now on, or are under way,
        do not complete until released; they may fail or be aborted meanwhile."""
        with self._cond:
            self._held_loads.add(_key(model))

    def release_loads(self, model: str | None = None) -> None:
        """End the hold on ``model``; None ends every load hold (per model ones included)."""
        with self._cond:
            if model is None:
                self._held_loads.clear()
            else:
                self._held_loads.discard(_key(model))
            self._cond.notify_all()

    def hold_requests(self, model: str | None = None) -> None:
        """Requests that get a runner of ``model`` (every model if None) keep it busy and send
        nothing until released (a load-only request too)."""
        with self._cond:
            self._held_requests.add(_key(model))

    def release_requests(self, model: str | None = None) -> None:
        """End the hold on ``model``; None ends every request hold."""
        with self._cond:
            if model is None:
                self._held_requests.clear()
            else:
                self._held_requests.discard(_key(model))
            self._cond.notify_all()

    def _release_holds_locked(self) -> None:
        self._held_loads.clear()
        self._held_requests.clear()
        self._held_paths.clear()
        self._cond.notify_all()

    def _wait_released(self, ctx: _Ctx, holds: set[Hashable], m: FakeModel) -> None:
        """Block while ``holds`` holds ``m``; ``_Canceled`` once its client goes away or the
        server stops or restarts."""
        with self._cond:
            while None in holds or m.key in holds:
                self._check_epoch(ctx)
                if ctx.cancelled():
                    raise _Canceled()
                self._cond.wait(0.01)
