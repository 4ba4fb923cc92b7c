"""The explicit registry of provisioning modules: provider key -> factory taking a ``ProviderConfig``.

Modules are imported inside their factory, so a provider's module (and its SDK) loads only when that
provider is used, and a missing or broken module fails only its own key. The keys are the same
lowercase keys as pricing. ``use`` puts another factory under a key for the length of a ``with``
block (tests, plug-ins); the lookup error names the valid keys.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from cloudarb.deploy.errors import UnknownProvider
from cloudarb.deploy.providers.base import ProviderConfig, Provisioner

Factory = Callable[[ProviderConfig], Provisioner]


def _module(name: str) -> Factory:
    def factory(config: ProviderConfig) -> Provisioner:
        module = importlib.import_module(f"cloudarb.deploy.providers.{name}")
        made: Provisioner = module.provisioner(config)
        return made

    factory.__name__ = f"{name}_provisioner"
    return factory


FACTORIES: dict[str, Factory] = {
    "aws": _module("aws"),
    "lambda": _module("lambda_"),
    "runpod": _module("runpod"),
    "vast": _module("vast"),
    "tensordock": _module("tensordock"),
    "local": _module("local"),
    "kubernetes": _module("kubernetes"),
}
"""Every provisioning provider key and its factory."""


def keys() -> list[str]:
    return sorted(FACTORIES)


def factory(key: str) -> Factory:
    try:
        return FACTORIES[key]
    except KeyError:
        raise UnknownProvider(
            f"no provisioning module for provider {key!r}; valid providers: {', '.join(keys())}"
        ) from None


def provisioner(key: str, config: ProviderConfig) -> Provisioner:
    """A provisioner of provider ``key`` for the account that ``config`` reaches."""
    return factory(key)(config)


@contextmanager
def use(key: str, made: Factory) -> Iterator[None]:
    """Serve ``key`` with ``made`` inside the block (a test double of the provider edge, a plug-in)."""
    previous = FACTORIES.get(key)
    FACTORIES[key] = made
    try:
        yield
    finally:
        if previous is None:
            FACTORIES.pop(key, None)
        else:
            FACTORIES[key] = previous
