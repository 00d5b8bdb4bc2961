"""The bodies of the gateway's own routes (feedback, admin keys), validated strictly.

A wrong type, an unknown field, a negative budget or an oversized comment is a 400 that names the
field, never a 500 or a silently odd record (``"models": "gpt-4o"`` once became a scope of single
letters).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator

from podium.errors import BadRequestError
from podium.types import describe_validation_error

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FeedbackBody(_Body):
    request_id: Name
    score: float | None = None
    label: Annotated[str, StringConstraints(max_length=200)] | None = None
    comment: Annotated[str, StringConstraints(max_length=4000)] | None = None

    @field_validator("score", mode="before")
    @classmethod
    def _finite_number(cls, value: Any) -> Any:
        if isinstance(value, bool) or (value is not None and not isinstance(value, int | float)):
            raise ValueError("must be a number")
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return float(value) if value is not None else None

    def model_post_init(self, __context: Any) -> None:
        if self.score is None and self.label is None:
            raise ValueError("feedback needs a 'score' (number) or a 'label' (string)")


class NewKey(_Body):
    name: Name
    models: Annotated[list[Name], Field(min_length=1, max_length=500)] | None = None
    budget: Annotated[float, Field(ge=0, le=1e12, allow_inf_nan=False)] | None = None
    budget_period: Literal["total", "day", "month"] = "total"
    rpm: Annotated[int, Field(gt=0, le=10**9)] | None = None
    tpm: Annotated[int, Field(gt=0, le=10**12)] | None = None
    team: Name | None = None

    @field_validator("budget", mode="before")
    @classmethod
    def _budget_number(cls, value: Any) -> Any:
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


B = TypeVar("B", bound=BaseModel)


def parse_body(model: type[B], payload: Any) -> B:
    if not isinstance(payload, dict):
        raise BadRequestError("the body must be a JSON object")
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise BadRequestError(describe_validation_error(exc)) from None
    except ValueError as exc:
        raise BadRequestError(str(exc)) from None
