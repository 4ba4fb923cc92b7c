"""Deploy stage tests: provisioning modules against loopback fakes and moto, the core, the reconciler."""
