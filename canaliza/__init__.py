"""Canaliza's composition root: the one package that knows every service.

The kernel (:mod:`services`) is what every service is built from and knows none of them;
each domain package (auth, capacity, referral, audit, frontend) builds on the kernel and
knows no other. This package puts them together: :mod:`canaliza.composition` finds the
services and builds their app, :mod:`canaliza.launcher` is the ``canaliza`` command,
:mod:`canaliza.gateway` the reverse proxy of the distributed topology and
:mod:`canaliza.cluster` that topology on one machine; :mod:`canaliza.seed` generates and
loads synthetic data and :mod:`canaliza.demo` names the demo's reference identities.

Nothing is imported here, so ``import canaliza.demo`` (a leaf the services' demo data
uses) loads nothing else.
"""
