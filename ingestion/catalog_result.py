"""What loading a catalog returns: good offers, quarantined rows with their reason, and counts.

Nothing a loader reads disappears: a row becomes offers, or is quarantined (it looked like a GPU
offer but failed a check: unknown model, memory outside the data sheet, implausible price, a
fraction of a GPU, no price), or is skipped because it is not an offer by nature (a CPU-only
machine, a TPU, a GCP accelerator-price row already summed into its VM). Quarantined rows keep their
line and raw cells so a person can see exactly what was refused and why.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingestion.datasheet import PricePolicy, check_quote
from ingestion.schemas import PriceQuote

QuarantineReason = Literal[
    "unknown GPU model",
    "memory outside data sheet",
    "implausible price",
    "fractional GPU",
    "no price",
    "unparseable row",
    "no accelerator row",
    "no host row",
]


class QuarantinedRow(BaseModel):
    """One catalog row refused, with the reason (for counting) and a sentence (for people)."""

    model_config = ConfigDict(frozen=True)

    line: int = Field(description="1-based line in the file (the header is line 1).")
    reason: QuarantineReason
    detail: str
    record: dict[str, str] = Field(default_factory=dict, description="The row's raw cells.")


class CatalogLoad(BaseModel):
    """The result of loading one catalog file under one convention."""

    model_config = ConfigDict(frozen=True)

    source: str = Field(description="File path or name.")
    convention: str
    provider: str
    rows_read: int = Field(ge=0)
    offers: tuple[PriceQuote, ...]
    quarantined: tuple[QuarantinedRow, ...]
    skipped: dict[str, int] = Field(description="Rows that are not offers by nature, by reason.")

    @property
    def quarantined_by_reason(self) -> dict[str, int]:
        return dict(Counter(q.reason for q in self.quarantined))

    @property
    def spot_offers(self) -> int:
        return sum(1 for q in self.offers if q.spot)

    def summary(self) -> dict[str, Any]:
        """Counts only, JSON-ready (for `cloudarb catalog import --json` and the figures)."""
        return {
            "source": self.source,
            "convention": self.convention,
            "provider": self.provider,
            "rows_read": self.rows_read,
            "offers": len(self.offers),
            "on_demand_offers": len(self.offers) - self.spot_offers,
            "spot_offers": self.spot_offers,
            "quarantined_rows": len(self.quarantined),
            "quarantined_by_reason": self.quarantined_by_reason,
            "skipped": dict(self.skipped),
        }


class LoadCollector:
    """Gathers a loader's outcome; every candidate quote passes the data-sheet check here."""

    def __init__(self, *, source: str, convention: str, provider: str, policy: PricePolicy) -> None:
        self._source, self._convention, self._provider = source, convention, provider
        self._policy = policy
        self.rows_read = 0
        self._offers: list[PriceQuote] = []
        self._quarantined: list[QuarantinedRow] = []
        self._skipped: Counter[str] = Counter()

    def skip(self, reason: str) -> None:
        self._skipped[reason] += 1

    def quarantine(self, line: int, reason: QuarantineReason, detail: str, record: Mapping[str, str]) -> None:
        cells = {k: v for k, v in record.items() if isinstance(k, str) and isinstance(v, str)}
        self._quarantined.append(QuarantinedRow(line=line, reason=reason, detail=detail, record=cells))

    def offer_row(self, line: int, record: Mapping[str, str], quotes: list[dict[str, Any]]) -> None:
        """Validate and check the quotes of one row; the row is quarantined at its first failure.

        A row that fails for one of its prices (its spot price, say) is refused as a whole: a row
        that is wrong in part is not trusted in the rest.
        """
        checked: list[PriceQuote] = []
        for data in quotes:
            try:
                quote = PriceQuote.model_validate(data)
            except ValidationError as exc:
                self.quarantine(line, "unparseable row", str(exc.errors()[0]["msg"]), record)
                return
            verdict = check_quote(quote, policy=self._policy)
            if verdict.reason is not None:
                self.quarantine(line, verdict.reason, verdict.detail, record)
                return
            checked.append(quote)
        self._offers.extend(checked)

    def result(self) -> CatalogLoad:
        return CatalogLoad(
            source=self._source,
            convention=self._convention,
            provider=self._provider,
            rows_read=self.rows_read,
            offers=tuple(self._offers),
            quarantined=tuple(self._quarantined),
            skipped=dict(self._skipped),
        )
