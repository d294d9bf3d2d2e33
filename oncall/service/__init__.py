"""The escalation service (`Service`), one module per job: `intake` (stored events →
incidents), `timers` (due timers, the digest), `paging` (sending, fail-over, bundling hand-off;
`claims`, `edits`), `actions` (ack, resolve, snooze), `notices` (team posts, the owner's
notices, customer reassurance), `views` (what the API and the status page read), `effects`
(carrying out the core's decisions after each commit) and `plumbing` (what they share).
Nothing here imports `oncall.web`."""

from oncall.service.actions import ActResult, Verb
from oncall.service.notices import Reassurer
from oncall.service.paging import AckLink
from oncall.service.service import Service
from oncall.service.views import IncidentView, OnCallView, view, who

__all__ = [
    "AckLink",
    "ActResult",
    "IncidentView",
    "OnCallView",
    "Reassurer",
    "Service",
    "Verb",
    "view",
    "who",
]
