"""What else happens when a transition is taken: a registry like the criteria's.

Other apps register `effect(initiative, decision)` for a transition; `gates.services.decide`
runs them inside the decision's transaction, after the decision is written, so an effect that
fails undoes the whole decision. Gates import no other app.
"""

from collections import defaultdict
from collections.abc import Callable

_effects: dict[str, list[Callable]] = defaultdict(list)


def on(transition: str):
    """Decorator: run `effect(initiative, decision)` whenever `transition` is taken."""

    def register(effect: Callable) -> Callable:
        if effect not in _effects[str(transition)]:
            _effects[str(transition)].append(effect)
        return effect

    return register


def run(initiative, decision) -> None:
    for effect in _effects.get(decision.transition, []):
        effect(initiative, decision)
