"""The deploy stage's errors: what a provider said, translated at the provider's edge.

Every provisioning module raises only these (``from`` the foreign error), so the deploy core decides
on kinds, never on a provider's words: no capacity, quota and an unsupported launch move to the next offer (failover), rate
limits wait, an unknown outcome of a create is resolved by listing, an invalid request fails the line.
"""

from __future__ import annotations

from cloudarb.errors import BadRequest, CloudArbError, Unavailable


class ProvisionError(CloudArbError):
    """Root of what a provisioning call can answer besides success."""

    code = "provision_error"

    def __init__(self, message: str, *, provider: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.retry_after_s = retry_after_s


class NoCapacity(ProvisionError):
    """The provider has no machine of this kind here now (try another offer; block this one a while)."""

    code = "no_capacity"


class QuotaExceeded(ProvisionError):
    """The account's quota or limit refuses it (try another provider or region)."""

    code = "quota_exceeded"


class OfferGone(ProvisionError):
    """A marketplace offer was taken between search and create (Vast's ``no_such_ask``)."""

    code = "offer_gone"


class Unsupported(ProvisionError):
    """The provider (or its API version) cannot launch what the offer asks for, such as a spot instance
    on RunPod's REST v2: nothing was created; the line moves to its next offer."""

    code = "unsupported"


class AuthFailed(ProvisionError):
    """The credentials are missing, invalid, or the account is inactive or unpaid."""

    code = "auth_failed"


class RateLimited(ProvisionError):
    """The provider asks us to slow down; ``retry_after_s`` when it said how long."""

    code = "provider_rate_limited"


class InvalidLaunch(ProvisionError, BadRequest):
    """The provider refused the request's parameters (image, region, type): retrying will not help."""

    code = "invalid_launch"


class CreateUnknown(ProvisionError):
    """The create call timed out or failed on the provider's side: the instance may exist. Resolved
    only by looking for it by its key (look-after-failure), never by assuming."""

    code = "create_unknown"


class ProviderUnavailable(ProvisionError, Unavailable):
    """A transient failure (5xx, connection, timeout) of a call that creates nothing: retry later."""

    code = "provider_unavailable"


class ListingIncomplete(ProviderUnavailable):
    """A listing could not be read whole (a page failed): a reconcile pass must abort, never act on it."""

    code = "listing_incomplete"


class UnknownProvider(BadRequest):
    """No provisioning module for this provider key (the message names the valid keys)."""

    code = "unknown_provider"


# What makes the deploy core move a line to its next offer.
FAILOVER_ERRORS: tuple[type[ProvisionError], ...] = (NoCapacity, QuotaExceeded, OfferGone, Unsupported)
