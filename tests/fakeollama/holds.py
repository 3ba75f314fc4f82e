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
    ``release_requests``)."""

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
