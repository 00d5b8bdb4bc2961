"""The ledger: one row per request and per model call, and the reports that read them."""

from podium.ledger.checks import InvalidRow
from podium.ledger.report import GroupRow, Report, build_report
from podium.ledger.rows import CallRow, RequestEnd, RequestStart
from podium.ledger.sqlite import SQLiteLedger
from podium.ledger.store import LedgerStore

__all__ = ["CallRow", "GroupRow", "InvalidRow", "LedgerStore", "Report", "RequestEnd", "RequestStart", "SQLiteLedger",
           "build_report"]
