"""Read keys: `Authorization: Bearer <key>`, each key scoped to exactly one tenant."""

from collections.abc import Callable, Mapping
from typing import Annotated

from fastapi import HTTPException, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

# declared in the OpenAPI document as the `readKey` scheme; a missing or malformed header is
# answered by `tenant_of` below (401 with the reason), not by FastAPI's 403
READ_KEY = HTTPBearer(scheme_name="readKey", description="A tenant's read key", auto_error=False)


def read_key_tenant(tenants_by_read_key: Mapping[str, str]) -> Callable[..., str]:
    """A FastAPI dependency answering the caller's tenant, or 401. Write keys never match:
    settings refuse a key that is both."""

    def tenant_of(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Security(READ_KEY)],
    ) -> str:
        key = credentials.credentials.strip() if credentials is not None else ""
        tenant = tenants_by_read_key.get(key)
        if tenant is None:
            why = (
                "this read key is not known: check it (a write key is not a read key)"
                if key
                else "send a read key as 'Authorization: Bearer <key>'"
            )
            raise HTTPException(401, why, headers={"WWW-Authenticate": "Bearer"})
        return tenant

    return tenant_of
