"""Who is calling (a virtual key, hashed at rest) and may they ask for this model or strategy.

The request's own ``model`` is checked here (403 at once); every call the request then makes is
checked against the key's scope again where it goes to a deployment (``podium.policy``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from podium.errors import AuthenticationError, ScopeError
from podium.server.keys import Keys, VirtualKey
from podium.server.middleware.base import GatewayCall, Handler, Outcome

Allows = Callable[[Sequence[str] | None, str | None], bool]


async def identify(keys: Keys, secret: str | None, *, required: bool) -> VirtualKey | None:
    """The caller's key, or None for an anonymous caller where auth is optional; 401 otherwise."""
    if secret is None:
        if required:
            raise AuthenticationError("You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                                      "(create one with `podium keys create`).", code="missing_api_key")
        return None
    key = await keys.lookup(secret)
    if key is None:
        if not required:
            return None  # auth optional (local use): an unknown key is anonymous
        raise AuthenticationError(f"Incorrect API key provided: {secret[:7]}…", code="invalid_api_key")
    return key


def check_scope(key: VirtualKey | None, model: str | None, allows: Allows) -> None:
    """403 unless the key may ask for ``model`` (None: routed)."""
    if key is not None and not allows(key.models, model):
        raise ScopeError(f"key '{key.name}' may not use '{(model or 'auto')[:200]}' (allowed: "
                         f"{', '.join(key.models or ())})")


class Auth:
    def __init__(self, next_handler: Handler, keys: Keys, required: bool, allows: Allows) -> None:
        self.next, self.keys, self.required, self.allows = next_handler, keys, required, allows

    async def __call__(self, call: GatewayCall) -> Outcome:
        call.key = await identify(self.keys, call.secret, required=self.required)  # known even if refused below
        check_scope(call.key, call.request.model, self.allows)
        return await self.next(call)
