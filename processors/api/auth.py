"""Read keys: `Authorization: Bearer <key>`, each key scoped to exactly one tenant."""

from collections.abc import Callable, Mapping

from fastapi import HTTPException, Request


def read_key_tenant(tenants_by_read_key: Mapping[str, str]) -> Callable[[Request], str]:
    """A FastAPI dependency answering the caller's tenant, or 401. Write keys never match:
    settings refuse a key that is both."""

    def tenant_of(request: Request) -> str:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        tenant = tenants_by_read_key.get(key.strip()) if scheme.lower() == "bearer" else None
        if tenant is None:
            raise HTTPException(
                401,
                "send a read key as 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return tenant

    return tenant_of
