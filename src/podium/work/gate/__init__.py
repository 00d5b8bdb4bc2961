"""The quality gate: a subtask's branch must pass the package's check command (``checks``) and then a
reviewer from another provider than its worker's (``review``) before it may merge.

Both say no when in doubt: a check that cannot start or does not finish fails, and a reviewer's answer
that cannot be read is not an approval.
"""

from podium.work.gate.checks import OUTPUT_LIMIT, check_env, run_check
from podium.work.gate.review import MAX_DIFF_CHARS, parse_verdict, review, review_messages

__all__ = ["MAX_DIFF_CHARS", "OUTPUT_LIMIT", "check_env", "parse_verdict", "review", "review_messages", "run_check"]
