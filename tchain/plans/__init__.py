"""Execution plans across banks (docs/protocol.md §14, docs/adr/0010-execution-plans.md).

``document``: the plan (participants, ordered instructions) and the customer's plan file;
``log``: the signed documents of its log (proposal, consent, approval, rejection, completion
and the others' word on it, compensation); ``execution``: the state the log gives.
"""

from tchain.plans.document import (
    PLAN_TYPE,
    Instruction,
    Participant,
    Plan,
    plan_document,
    plan_from_file,
    plan_id,
)
from tchain.plans.execution import STATES, Execution, InstructionState
from tchain.plans.log import LOG_TYPES, LogDoc, sign_log
from tchain.plans.receipts import consent_body, consents_of

__all__ = ["LOG_TYPES", "PLAN_TYPE", "STATES", "Execution", "Instruction", "InstructionState",
           "LogDoc", "Participant", "Plan", "consent_body", "consents_of", "plan_document",
           "plan_from_file", "plan_id", "sign_log"]
