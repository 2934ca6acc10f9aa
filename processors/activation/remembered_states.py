"""What the activation engine remembers between batches: the subject states it wrote, decoded."""

from __future__ import annotations

from collections import OrderedDict

from processors.activation.rules import SubjectState


class RememberedStates:
    """The states this engine last wrote, decoded, each with the value it was written as: a
    subject's state read again in the next batch (an account's, often) is taken from here when
    the store still holds that very value, instead of decoding all its hits again. Without it a
    subject's cost per batch grew with its hits (7 to 31 µs per event over 30 batches of the
    bench's events). A copy is handed out, so an entry stays what its value says whatever
    becomes of the batch. The oldest entries go once the rest would take more than `limit`
    bytes (`weight`)."""

    def __init__(self, limit: int = 64 << 20) -> None:
        self._limit = limit
        self._held = 0
        # oldest first; an OrderedDict drops its oldest in O(1), a dict would scan its holes
        self._states: OrderedDict[bytes, tuple[bytes, SubjectState]] = OrderedDict()

    @staticmethod
    def weight(state: SubjectState) -> int:
        """Bytes an entry takes, about (measured: ~1.6 KB a state, ~50 bytes more a hit)."""
        return 1_600 + 50 * len(state.hits)

    def read(self, key: bytes, raw: bytes) -> SubjectState:
        found = self._states.get(key)
        if found is not None and found[0] == raw:
            return found[1].copy()
        return SubjectState.decode(raw)

    def wrote(self, key: bytes, raw: bytes | None, state: SubjectState | None) -> None:
        self._drop(key)  # re-inserted last: the order is the age
        if raw is not None and state is not None:
            self._states[key] = (raw, state)
            self._held += self.weight(state)
            while self._held > self._limit and self._states:
                _, (_, oldest) = self._states.popitem(last=False)
                self._held -= self.weight(oldest)

    def _drop(self, key: bytes) -> None:
        found = self._states.pop(key, None)
        if found is not None:
            self._held -= self.weight(found[1])

    def clear(self) -> None:
        self._states.clear()
        self._held = 0
