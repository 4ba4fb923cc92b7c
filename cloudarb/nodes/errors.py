"""The nodes feature's errors, as subclasses of the application's categories (mapped to HTTP in one place)."""

from __future__ import annotations

from cloudarb.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized


class NodeNotFound(NotFound):
    code = "node_not_found"


class PlacementNotFound(NotFound):
    code = "placement_not_found"


class BadJoinToken(Unauthorized):
    """The join token is unknown, used already or expired (one message for all three: no oracle)."""

    code = "bad_join_token"


class BadNodeToken(Unauthorized):
    code = "bad_node_token"


class NodeBusy(Conflict):
    """The node still holds live placements (drain it and destroy them first)."""

    code = "node_busy"


class PlacementState(Conflict):
    """The placement's state does not allow the request (cancel a running one, start a destroyed one)."""

    code = "placement_state"


class TemplateNotAllowed(Forbidden):
    code = "template_not_allowed"


class UnknownTemplate(InvalidInput):
    code = "unknown_template"


class TemplateNotFound(NotFound):
    """No template of that name that this organization sees (another's is 'not found' too)."""

    code = "template_not_found"


class TemplateReadOnly(Forbidden):
    """A catalog template (built in, or the installation's): no organization may change or delete it."""

    code = "template_read_only"


class TemplateExists(Conflict):
    code = "template_exists"


class TemplateInUse(Conflict):
    """Live placements were made from the template (destroy them first)."""

    code = "template_in_use"


class NoSuchGpu(InvalidInput):
    """The node has no GPU of the kind asked for (never one that could free up: queueing would wait forever)."""

    code = "no_such_gpu"
