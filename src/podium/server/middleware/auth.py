"""Who is calling (a virtual key, hashed at rest) and may they use this model or strategy."""

from __future__ import annotations

from podium.errors import AuthenticationError, PermissionDeniedError
from podium.server.keys import KeyStore, VirtualKey
from podium.server.middleware.base import GatewayCall, Handler, Outcome


def identify(keys: KeyStore, secret: str | None, model: str | None, *, required: bool) -> VirtualKey | None:
    """The caller's key, or None for an anonymous caller where auth is optional; 401/403 otherwise."""
    if secret is None:
        if required:
            raise AuthenticationError("You didn't provide an API key. Send it as 'Authorization: Bearer <key>' "
                                      "(create one with `podium keys create`).", code="missing_api_key")
        return None
    key = keys.lookup(secret)
    if key is None:
        if not required:
            return None  # auth optional (local use): an unknown key is anonymous
        raise AuthenticationError(f"Incorrect API key provided: {secret[:7]}…", code="invalid_api_key")
    if not key.allows(model):
        raise PermissionDeniedError(f"key '{key.name}' may not use '{model or 'auto'}' (allowed: "
                                    f"{', '.join(key.models or ())})", code="model_not_allowed")
    return key


class Auth:
    def __init__(self, next_handler: Handler, keys: KeyStore, required: bool) -> None:
        self.next, self.keys, self.required = next_handler, keys, required

    async def __call__(self, call: GatewayCall) -> Outcome:
        call.key = identify(self.keys, call.secret, call.request.model, required=self.required)
        return await self.next(call)
