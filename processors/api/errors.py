"""The read API's answers besides 200 and FastAPI's own 422, as its OpenAPI document declares
them: one table of statuses and when each is given."""

from typing import Any

from pydantic import BaseModel, Field

from processors.api.params import RANGE


class ApiError(BaseModel):
    detail: str = Field(description="What was wrong, in words")


ERRORS = {
    400: f"A value this API cannot answer for: a time out of range (give one {RANGE}),"
    " `from` not before `to`, a range off a meter's grid (whole minutes; milliseconds for"
    " held meters), a billing period that is not YYYY-MM, an unknown time zone, a cursor it did"
    " not give out",
    401: "No read key, or one no tenant holds: send `Authorization: Bearer <key>`",
    404: "No meter or activation rule of that name",
}


def answers(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route or router that can answer `statuses`."""
    return {status: {"model": ApiError, "description": ERRORS[status]} for status in statuses}
